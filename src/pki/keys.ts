/** Key generation, key files and signing. Keys are Node KeyObjects; PEM is PKCS#8. */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import * as der from './der.js';
import { decodePemBlocks } from './pem.js';

export const KEY_TYPES = ['p256', 'p384', 'rsa2048', 'rsa3072', 'rsa4096', 'ed25519'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export function isKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}

export function generatePrivateKey(type: KeyType = 'p256'): KeyObject {
  switch (type) {
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    case 'p384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
    case 'rsa2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    case 'rsa3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
    case 'rsa4096':
      return generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey;
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
  }
}

/**
 * PKCS#8 PEM. With a passphrase the key is encrypted with PBES2 (PBKDF2 + AES-256-CBC),
 * which OpenSSL, step-ca and Go read.
 */
export function privateKeyToPem(key: KeyObject, passphrase?: string): string {
  if (passphrase !== undefined) {
    return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
  }
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** PKCS#8 EncryptedPrivateKeyInfo (RFC 5958 §3), or a legacy OpenSSL key with a Proc-Type header. */
export function isEncryptedKeyPem(pem: string): boolean {
  return (
    decodePemBlocks(pem).some((block) => block.label === 'ENCRYPTED PRIVATE KEY') ||
    pem.includes('Proc-Type: 4,ENCRYPTED')
  );
}

export function loadPrivateKey(pem: string, passphrase?: string, source = 'key'): KeyObject {
  if (isEncryptedKeyPem(pem) && passphrase === undefined) {
    throw new GatehouseError('GH_CA_KEY_LOCKED', `${source} is encrypted; pass --passphrase-file`);
  }
  try {
    return createPrivateKey(passphrase === undefined ? { key: pem } : { key: pem, passphrase });
  } catch (cause) {
    if (isEncryptedKeyPem(pem)) {
      throw new GatehouseError('GH_CA_KEY_LOCKED', `${source}: wrong passphrase`, { cause });
    }
    throw new GatehouseError('GH_FILE_IO', `${source} is not a readable private key`, { cause });
  }
}

export function publicKeyOf(key: KeyObject): KeyObject {
  return key.type === 'public' ? key : createPublicKey(key);
}

export function spkiDer(key: KeyObject): Buffer {
  return publicKeyOf(key).export({ type: 'spki', format: 'der' });
}

/** A human description used in errors and `whoami`: "ECDSA P-256", "RSA 3072", "Ed25519". */
/** `details` may be passed in: each read of asymmetricKeyDetails is a call into OpenSSL. */
export function describeKey(key: KeyObject, details = key.asymmetricKeyDetails ?? {}): string {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return `ECDSA ${details.namedCurve === 'prime256v1' ? 'P-256' : details.namedCurve === 'secp384r1' ? 'P-384' : details.namedCurve}`;
    case 'rsa':
      return `RSA ${details.modulusLength}`;
    case 'ed25519':
      return 'Ed25519';
    default:
      return String(key.asymmetricKeyType);
  }
}

/** Null when the key is acceptable for an issued certificate, else why not. */
export function unacceptableKeyReason(key: KeyObject, details = key.asymmetricKeyDetails ?? {}): string | null {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return details.namedCurve === 'prime256v1' || details.namedCurve === 'secp384r1'
        ? null
        : `curve ${details.namedCurve} is not accepted (P-256 or P-384)`;
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      return bits >= 2048 && bits <= 8192 ? null : `RSA ${bits} is not accepted (2048 to 8192 bits)`;
    }
    case 'ed25519':
      return null;
    default:
      return `key type ${key.asymmetricKeyType} is not accepted`;
  }
}

export interface SignatureAlgorithm {
  name: string;
  oid: string;
  /** Node hash name; null for Ed25519 (pure EdDSA). */
  hash: 'sha256' | 'sha384' | null;
  /** DER AlgorithmIdentifier. RFC 4055 §5: RSA PKCS#1 v1.5 carries NULL params; RFC 5758 §3.2, RFC 8410 §3: ECDSA, Ed25519 carry none. */
  identifierDer: Buffer;
}

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_ECDSA_SHA384 = '1.2.840.10045.4.3.3';
const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';
const OID_RSA_SHA384 = '1.2.840.113549.1.1.12';
const OID_ED25519 = '1.3.101.112';

function algorithm(
  name: string,
  oid: string,
  hash: SignatureAlgorithm['hash'],
  nullParams: boolean,
): SignatureAlgorithm {
  const identifierDer = nullParams
    ? der.seq(der.oid(oid), der.tlv(der.TAG.NULL, Buffer.alloc(0)))
    : der.seq(der.oid(oid));
  return { name, oid, hash, identifierDer };
}

const SIGNATURE_ALGORITHMS: Record<string, SignatureAlgorithm> = {
  [OID_ECDSA_SHA256]: algorithm('ecdsa-with-SHA256', OID_ECDSA_SHA256, 'sha256', false),
  [OID_ECDSA_SHA384]: algorithm('ecdsa-with-SHA384', OID_ECDSA_SHA384, 'sha384', false),
  [OID_RSA_SHA256]: algorithm('sha256WithRSAEncryption', OID_RSA_SHA256, 'sha256', true),
  [OID_RSA_SHA384]: algorithm('sha384WithRSAEncryption', OID_RSA_SHA384, 'sha384', true),
  [OID_ED25519]: algorithm('Ed25519', OID_ED25519, null, false),
};

export function signatureAlgorithmByOid(oid: string): SignatureAlgorithm | undefined {
  return SIGNATURE_ALGORITHMS[oid];
}

/** Whether a signature algorithm belongs to the key's type (no ECDSA OID on an RSA key, and so on). */
export function signatureMatchesKey(oid: string, key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  if (oid.startsWith('1.2.840.10045.4.3.')) return type === 'ec';
  if (oid.startsWith('1.2.840.113549.1.1.')) return type === 'rsa';
  return type === 'ed25519';
}

/** The algorithm a CA key signs with: P-384 pairs with SHA-384, everything else with SHA-256. */
export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return SIGNATURE_ALGORITHMS[
        key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? OID_ECDSA_SHA384 : OID_ECDSA_SHA256
      ]!;
    case 'rsa':
      return SIGNATURE_ALGORITHMS[OID_RSA_SHA256]!;
    case 'ed25519':
      return SIGNATURE_ALGORITHMS[OID_ED25519]!;
    default:
      throw new GatehouseError('GH_INTERNAL', `cannot sign with key type ${key.asymmetricKeyType}`);
  }
}

export function signWith(alg: SignatureAlgorithm, key: KeyObject, data: Buffer): Buffer {
  return sign(alg.hash, data, key);
}
