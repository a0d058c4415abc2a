/**
 * The TLS policy every Gatehouse server shares (the CA and the gateway): TLS 1.2 at least, and
 * in TLS 1.2 only ECDHE key exchange with AEAD ciphers (forward secrecy, no CBC); TLS 1.3's
 * suites are all AEAD (RFC 8446 §9.1) and Node's defaults for them stand.
 */
export const TLS12_AEAD_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
