/** The one place @peculiar/x509 is set up. It needs reflect-metadata loaded before it. */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto, type KeyObject } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
export { x509 };

export function webAlgorithmFor(key: KeyObject): {
  importParams: Algorithm | EcKeyImportParams | RsaHashedImportParams;
  signing: Algorithm | EcdsaParams;
} {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
      const hash = curve === 'P-384' ? 'SHA-384' : 'SHA-256';
      return {
        importParams: { name: 'ECDSA', namedCurve: curve } as EcKeyImportParams,
        signing: { name: 'ECDSA', hash } as EcdsaParams,
      };
    }
    case 'rsa':
      return {
        importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as RsaHashedImportParams,
        signing: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as Algorithm,
      };
    case 'ed25519':
      return { importParams: { name: 'Ed25519' }, signing: { name: 'Ed25519' } };
    default:
      throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
  }
}

export async function toCryptoKeys(privateKey: KeyObject): Promise<CryptoKeyPair> {
  const { importParams } = webAlgorithmFor(privateKey);
  const subtle = webcrypto.subtle;
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = (await import('node:crypto')).createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const signKey = await subtle.importKey('pkcs8', pkcs8, importParams as never, false, ['sign']);
  const verifyKey = await subtle.importKey('spki', spki, importParams as never, true, ['verify']);
  return { privateKey: signKey as unknown as CryptoKey, publicKey: verifyKey as unknown as CryptoKey };
}
