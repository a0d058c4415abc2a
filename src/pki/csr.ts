/**
 * PKCS#10 (RFC 2986) parsing with a signature check, hand-read from the DER because the
 * library path costs ~1 ms per CSR on the issuance hot path (bench/issuance.ts).
 * Cross-checked against @peculiar/x509 and `openssl req -verify` in test/pki-csr.test.ts.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors/errors.js';
import { DerError, TAG, children, decodeOid, expectTag, readNode, type DerNode } from './der.js';
import { describeKey, signatureAlgorithmByOid, signatureMatchesKey, unacceptableKeyReason } from './keys.js';
import { decodePem, looksLikePem } from './pem.js';
import { bytesToIp } from './ip.js';
import { OID, ATTRIBUTE_NAMES } from './oids.js';

export interface NameAttribute {
  oid: string;
  /** Short name (CN, OU, O, …) or the dotted OID when unknown. */
  type: string;
  value: string;
}

export interface SubjectAltNames {
  dns: string[];
  ip: string[];
  uri: string[];
  email: string[];
  /** GeneralName tags we do not issue (otherName, x400, directoryName, …). */
  other: number[];
}

export interface ParsedCsr {
  der: Buffer;
  subject: NameAttribute[];
  publicKey: KeyObject;
  spkiDer: Buffer;
  keyDescription: string;
  sans: SubjectAltNames;
  /** The CSR's extensionRequest asks for basicConstraints cA=TRUE. */
  requestsCa: boolean;
  /** OIDs of every requested extension. */
  extensionOids: string[];
  requestedEku: string[];
}

const MAX_CSR_BYTES = 16 * 1024;

/** Accepts PEM ("CERTIFICATE REQUEST" or the legacy "NEW CERTIFICATE REQUEST") or DER. */
export function parseCsr(input: string | Buffer): ParsedCsr {
  const der = csrDer(input);
  let parsed: Omit<ParsedCsr, 'publicKey' | 'keyDescription'> & {
    criRaw: Buffer;
    sigAlgOid: string;
    signature: Buffer;
  };
  try {
    parsed = readCsrStructure(der);
  } catch (cause) {
    const why = cause instanceof DerError ? cause.message : 'unreadable structure';
    throw new GatehouseError('GH_CSR_MALFORMED', `CSR is malformed: ${why}`, { cause });
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: parsed.spkiDer, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new GatehouseError('GH_CSR_KEY_UNSUPPORTED', 'CSR public key cannot be read', { cause });
  }
  const details = publicKey.asymmetricKeyDetails ?? {};
  const keyProblem = unacceptableKeyReason(publicKey, details);
  if (keyProblem) throw new GatehouseError('GH_CSR_KEY_UNSUPPORTED', `CSR key: ${keyProblem}`);
  const alg = signatureAlgorithmByOid(parsed.sigAlgOid);
  if (!alg) throw new GatehouseError('GH_CSR_SIGNATURE', `CSR signature algorithm ${parsed.sigAlgOid} is not accepted`);
  if (!signatureMatchesKey(alg.oid, publicKey)) {
    throw new GatehouseError(
      'GH_CSR_SIGNATURE',
      `CSR signature algorithm ${alg.name} does not fit its ${describeKey(publicKey, details)} key`,
    );
  }
  let valid: boolean;
  try {
    valid = verify(alg.hash, parsed.criRaw, publicKey, parsed.signature);
  } catch {
    valid = false;
  }
  if (!valid)
    throw new GatehouseError(
      'GH_CSR_SIGNATURE',
      'CSR signature does not verify with its own public key (proof of possession failed)',
    );
  const { criRaw: _c, sigAlgOid: _s, signature: _sig, ...rest } = parsed;
  return { ...rest, publicKey, keyDescription: describeKey(publicKey, details) };
}

function csrDer(input: string | Buffer): Buffer {
  if (typeof input === 'string' || looksLikePem(input)) {
    const text = typeof input === 'string' ? input : input.toString('utf8');
    const blocks = decodePem(text, 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST');
    if (blocks.length !== 1) {
      throw new GatehouseError(
        'GH_CSR_MALFORMED',
        blocks.length === 0 ? 'no PEM "CERTIFICATE REQUEST" block found' : 'more than one CSR in the input',
      );
    }
    input = blocks[0]!;
  }
  if (input.length === 0) throw new GatehouseError('GH_CSR_MALFORMED', 'CSR is empty');
  if (input.length > MAX_CSR_BYTES)
    throw new GatehouseError('GH_CSR_MALFORMED', `CSR is larger than ${MAX_CSR_BYTES} bytes`);
  return input;
}

function readCsrStructure(der: Buffer) {
  const top = expectTag(readNode(der), TAG.SEQUENCE, 'CertificationRequest');
  if (top.end !== der.length) throw new DerError('trailing bytes after the CSR');
  const [cri, sigAlg, sig] = children(top);
  expectTag(cri, TAG.SEQUENCE, 'certificationRequestInfo');
  expectTag(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm');
  expectTag(sig, TAG.BIT_STRING, 'signature');
  const [version, subject, spki, attributes] = children(cri!);
  const v = expectTag(version, TAG.INTEGER, 'version');
  if (v.content.length !== 1 || v.content[0] !== 0) throw new DerError('version must be 0 (v1)');
  expectTag(subject, TAG.SEQUENCE, 'subject');
  expectTag(spki, TAG.SEQUENCE, 'subjectPKInfo');
  const sigAlgOid = decodeOid(expectTag(children(sigAlg!)[0], TAG.OID, 'signature algorithm').content);
  if (sig!.content[0] !== 0) throw new DerError('signature BIT STRING has unused bits');

  const ext = readExtensionRequest(attributes);
  return {
    der,
    subject: readName(subject!),
    spkiDer: Buffer.from(spki!.raw),
    criRaw: cri!.raw,
    sigAlgOid,
    signature: sig!.content.subarray(1),
    ...ext,
  };
}

export function readName(name: DerNode): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of children(name)) {
    expectTag(rdn, TAG.SET, 'RelativeDistinguishedName');
    for (const atv of children(rdn)) {
      const [type, value] = children(expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue'));
      const oid = decodeOid(expectTag(type, TAG.OID, 'attribute type').content);
      if (!value) throw new DerError('attribute without value');
      out.push({ oid, type: ATTRIBUTE_NAMES[oid] ?? oid, value: decodeDirectoryString(value) });
    }
  }
  return out;
}

function decodeDirectoryString(node: DerNode): string {
  switch (node.tag) {
    case TAG.UTF8_STRING:
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case 0x14 /* T61 */:
      return node.content.toString(node.tag === TAG.UTF8_STRING ? 'utf8' : 'latin1');
    case 0x1e: // BMPString, big-endian UCS-2
      return Buffer.from(node.content).swap16().toString('utf16le');
    default:
      throw new DerError(`unsupported string type 0x${node.tag.toString(16)} in a name`);
  }
}

function readExtensionRequest(attributes: DerNode | undefined) {
  const result = {
    sans: { dns: [], ip: [], uri: [], email: [], other: [] } as SubjectAltNames,
    requestsCa: false,
    extensionOids: [] as string[],
    requestedEku: [] as string[],
  };
  if (!attributes) return result;
  if (attributes.tag !== 0xa0) throw new DerError('attributes: expected [0]');
  for (const attr of children(attributes)) {
    const [type, values] = children(expectTag(attr, TAG.SEQUENCE, 'attribute'));
    const oid = decodeOid(expectTag(type, TAG.OID, 'attribute type').content);
    if (oid !== OID.extensionRequest) continue;
    const extensions = children(expectTag(values, TAG.SET, 'attribute values'))[0];
    for (const extension of children(expectTag(extensions, TAG.SEQUENCE, 'extensions'))) {
      const parts = children(expectTag(extension, TAG.SEQUENCE, 'extension'));
      const extOid = decodeOid(expectTag(parts[0], TAG.OID, 'extension id').content);
      const value = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extension value').content;
      result.extensionOids.push(extOid);
      if (extOid === OID.subjectAltName) result.sans = readGeneralNames(readNode(value));
      if (extOid === OID.basicConstraints) result.requestsCa = readBasicConstraintsCa(readNode(value));
      if (extOid === OID.extKeyUsage) result.requestedEku = children(readNode(value)).map((n) => decodeOid(n.content));
    }
  }
  return result;
}

export function readGeneralNames(node: DerNode): SubjectAltNames {
  const sans: SubjectAltNames = { dns: [], ip: [], uri: [], email: [], other: [] };
  for (const gn of children(expectTag(node, TAG.SEQUENCE, 'GeneralNames'))) {
    switch (gn.tag) {
      case 0x81:
        sans.email.push(gn.content.toString('latin1'));
        break;
      case 0x82:
        sans.dns.push(gn.content.toString('latin1'));
        break;
      case 0x86:
        sans.uri.push(gn.content.toString('latin1'));
        break;
      case 0x87:
        sans.ip.push(bytesToIp(gn.content));
        break;
      default:
        sans.other.push(gn.tag & 0x1f);
    }
  }
  return sans;
}

function readBasicConstraintsCa(node: DerNode): boolean {
  const first = children(expectTag(node, TAG.SEQUENCE, 'basicConstraints'))[0];
  return first?.tag === TAG.BOOLEAN && first.content[0] !== 0;
}
