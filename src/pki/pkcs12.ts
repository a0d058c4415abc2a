/**
 * PKCS#12 (RFC 7292) writer: exports an identity (private key + certificate chain) for
 * browsers, OS key stores and tools, laid out as OpenSSL 3's `openssl pkcs12 -export` does:
 *
 *   PFX v3
 *     authSafe (data) = AuthenticatedSafe [
 *       encryptedData (PBES2)  -> SafeContents [ certBag leaf, certBag intermediates... ]
 *       data                   -> SafeContents [ pkcs8ShroudedKeyBag (PBES2) ]
 *     ]
 *     macData = HMAC-SHA256, key from the RFC 7292 Appendix B KDF
 *
 * PBES2 = PBKDF2-HMAC-SHA256 + AES-256-CBC (RFC 8018 §6.2), fresh 16-byte salt and IV per use.
 */
import { createCipheriv, createHash, createHmac, pbkdf2Sync, randomBytes, type KeyObject } from 'node:crypto';
import { ctx, octetString, oid, seq, set, tlv, uintBytes, smallInt, TAG } from './der.js';
import { parseCertificate } from './certificate.js';
import { spkiDer } from './keys.js';

export interface Pkcs12Input {
  privateKey: KeyObject;
  /** Leaf first, then intermediates; optionally the root last. */
  certificatesDer: Buffer[];
  passphrase: string;
  /** Shown by key stores as the entry's label; put on the key bag and the leaf cert bag. */
  friendlyName?: string;
  /** PBKDF2 and MAC-KDF iteration count (default 600000). */
  iterations?: number;
}

/**
 * OWASP's 2023 figure for PBKDF2-HMAC-SHA256. The same count is used for the MAC KDF, as
 * `openssl pkcs12 -iter` does: the MAC is checked with the same passphrase, so a cheaper MAC
 * would be the cheaper oracle for guessing it and void the PBKDF2 cost.
 */
export const PKCS12_DEFAULT_ITERATIONS = 600_000;

const OIDS = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

const NULL = Buffer.from([TAG.NULL, 0x00]);
const BMP_STRING = 0x1e;

export function buildPkcs12(input: Pkcs12Input): Buffer {
  const { privateKey, certificatesDer, passphrase, friendlyName } = input;
  const iterations = input.iterations ?? PKCS12_DEFAULT_ITERATIONS;
  if (!passphrase)
    throw new Error('PKCS#12 export needs a non-empty passphrase: private keys are never exported unprotected');
  if (!Number.isSafeInteger(iterations) || iterations < 1)
    throw new Error(`PKCS#12 iterations must be a positive integer, got ${iterations}`);
  if (privateKey.type !== 'private') throw new Error('PKCS#12 export needs a private key');
  const leaf = certificatesDer[0];
  if (!leaf) throw new Error('PKCS#12 export needs at least the leaf certificate');
  if (!parseCertificate(leaf).spkiDer.equals(spkiDer(privateKey))) {
    throw new Error('the private key does not match the first (leaf) certificate');
  }

  // RFC 7292 §4.2: localKeyId pairs the key with its certificate; OpenSSL uses the leaf's SHA-1.
  const localKeyId = createHash('sha1').update(leaf).digest();
  const leafAttributes = set(
    ...(friendlyName !== undefined ? [attribute(OIDS.friendlyName, bmpString(friendlyName))] : []),
    attribute(OIDS.localKeyId, octetString(localKeyId)),
  );

  // RFC 7292 §4.2.3 CertBag ::= SEQUENCE { certId, certValue [0] EXPLICIT OCTET STRING }.
  const certBags = certificatesDer.map((der, i) =>
    safeBag(
      OIDS.certBag,
      seq(oid(OIDS.x509Certificate), ctx(0, true, octetString(der))),
      i === 0 ? leafAttributes : undefined,
    ),
  );
  // RFC 7292 §4.2.2: the value is an EncryptedPrivateKeyInfo (RFC 5958 §3) over PKCS#8.
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const shrouded = pbes2Encrypt(pkcs8, passphrase, iterations);
  const keyBag = safeBag(
    OIDS.pkcs8ShroudedKeyBag,
    seq(shrouded.algorithm, octetString(shrouded.ciphertext)),
    leafAttributes,
  );

  // RFC 7292 §4.1: AuthenticatedSafe ::= SEQUENCE OF ContentInfo.
  const authenticatedSafe = seq(
    encryptedDataContentInfo(seq(...certBags), passphrase, iterations),
    dataContentInfo(seq(keyBag)),
  );

  // RFC 7292 §4 / §5.1: the MAC covers the AuthenticatedSafe's DER, i.e. authSafe's content octets.
  const macSalt = randomBytes(16);
  const macKey = pkcs12Kdf(passphrase, macSalt, 3, iterations, 32);
  const mac = createHmac('sha256', macKey).update(authenticatedSafe).digest();
  const macData = seq(seq(algorithm(OIDS.sha256, NULL), octetString(mac)), octetString(macSalt), integer(iterations));

  return seq(smallInt(3), dataContentInfo(authenticatedSafe), macData);
}

/**
 * RFC 7292 Appendix B.2: the PKCS#12 key derivation, here with SHA-256 (u = 32, v = 64).
 * ID 1 = encryption key, 2 = IV, 3 = MAC key. The password is a BMPString with a two-byte
 * NUL terminator (Appendix B.1), which is how OpenSSL 3 converts its UTF-8 passphrases.
 */
export function pkcs12Kdf(passphrase: string, salt: Buffer, id: 1 | 2 | 3, iterations: number, length: number): Buffer {
  const u = 32;
  const v = 64;
  const fill = (src: Buffer): Buffer => {
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const password = Buffer.concat([utf16be(passphrase), Buffer.alloc(2)]);
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(password)]); // steps 2–4
  const blocks: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let A = createHash('sha256').update(D).update(I).digest(); // step 6a: A = H^r(D || I)
    for (let r = 1; r < iterations; r++) A = createHash('sha256').update(A).digest();
    blocks.push(A);
    if (produced + u >= length) break;
    const B = fill(A); // step 6b
    for (let j = 0; j < I.length; j += v) {
      // step 6c: I_j = (I_j + B + 1) mod 2^(8v), big-endian
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** RFC 8018 §6.2 PBES2: the AlgorithmIdentifier (with its parameters) and the ciphertext. */
function pbes2Encrypt(
  plaintext: Buffer,
  passphrase: string,
  iterations: number,
): { algorithm: Buffer; ciphertext: Buffer } {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  // PBKDF2 takes the passphrase as UTF-8 octets, as OpenSSL 3 does (RFC 8018 §3 leaves the encoding open).
  const key = pbkdf2Sync(Buffer.from(passphrase, 'utf8'), salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  // RFC 8018 A.2: PBKDF2-params; the PRF must be spelled out, its default is hmacWithSHA1.
  const kdf = algorithm(OIDS.pbkdf2, seq(octetString(salt), integer(iterations), algorithm(OIDS.hmacWithSHA256, NULL)));
  const params = seq(kdf, algorithm(OIDS.aes256Cbc, octetString(iv)));
  return { algorithm: algorithm(OIDS.pbes2, params), ciphertext };
}

/** ContentInfo of type data (RFC 2315 §8): [0] EXPLICIT OCTET STRING. */
function dataContentInfo(content: Buffer): Buffer {
  return seq(oid(OIDS.data), ctx(0, true, octetString(content)));
}

/** ContentInfo of type encryptedData (RFC 2315 §13), version 0, encryptedContent [0] IMPLICIT. */
function encryptedDataContentInfo(content: Buffer, passphrase: string, iterations: number): Buffer {
  const encrypted = pbes2Encrypt(content, passphrase, iterations);
  const encryptedContentInfo = seq(oid(OIDS.data), encrypted.algorithm, ctx(0, false, encrypted.ciphertext));
  return seq(oid(OIDS.encryptedData), ctx(0, true, seq(smallInt(0), encryptedContentInfo)));
}

/** RFC 7292 §4.2: SafeBag ::= SEQUENCE { bagId, bagValue [0] EXPLICIT, bagAttributes SET OPTIONAL }. */
function safeBag(bagId: string, value: Buffer, attributes?: Buffer): Buffer {
  return seq(oid(bagId), ctx(0, true, value), ...(attributes ? [attributes] : []));
}

function attribute(type: string, value: Buffer): Buffer {
  return seq(oid(type), set(value));
}

function algorithm(algorithmOid: string, parameters: Buffer): Buffer {
  return seq(oid(algorithmOid), parameters);
}

function integer(n: number): Buffer {
  const hex = n.toString(16);
  return uintBytes(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'));
}

function utf16be(s: string): Buffer {
  return Buffer.from(s, 'utf16le').swap16();
}

/** friendlyName is a BMPString (RFC 2985 §5.5.1): UTF-16BE. */
function bmpString(s: string): Buffer {
  return tlv(BMP_STRING, utf16be(s));
}
