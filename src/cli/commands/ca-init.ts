/**
 * `gatehouse ca init`: creates a CA directory, with its own root or an imported one, and
 * optionally an external signer. Its flag parsing (the --import-* and --external-ca-* groups)
 * lives here beside it, as no other command takes those flags.
 */
import { GatehouseError } from '../../errors/errors.js';
import { isKeyType, KEY_TYPES } from '../../pki/keys.js';
import { flag, list, str, type CommandSpec } from '../command.js';
import { json, keyValues } from '../output.js';
import type { ExternalCaOptions } from '../../ca/init.js';

export const caInit: CommandSpec = {
  path: ['ca', 'init'],
  summary:
    'Create a CA: a root, an online issuing intermediate, an admin identity (DIR/admin), the config and the database.',
  options: {
    dir: {
      type: 'string',
      value: 'DIR',
      required: true,
      description: 'New or empty directory for the CA (created 0700)',
    },
    name: {
      type: 'string',
      value: 'ORG',
      description: 'Organization name, the O= of every certificate (default Gatehouse)',
    },
    'trust-domain': {
      type: 'string',
      value: 'DOMAIN',
      description: 'SPIFFE trust domain (default gatehouse.internal)',
    },
    'key-type': { type: 'string', value: 'TYPE', description: `CA key type: ${KEY_TYPES.join(', ')} (default p256)` },
    'root-key-out': {
      type: 'string',
      value: 'FILE',
      description: 'Write the root key here instead of DIR, to keep it offline',
    },
    'passphrase-file': {
      type: 'string',
      value: 'FILE',
      description: 'Encrypt the CA keys at rest with the passphrase in FILE',
    },
    listen: {
      type: 'string',
      value: 'HOST:PORT',
      description: 'Address `ca serve` listens on (default 127.0.0.1:8443)',
    },
    'store-url': {
      type: 'string',
      value: 'URL',
      description:
        'Keep the state in PostgreSQL (postgres://user@host:port/db; default GATEHOUSE_STORE_URL, else SQLite in DIR); the password goes in PGPASSWORD or ~/.pgpass, never in gatehouse.yaml',
    },
    'import-root': {
      type: 'string',
      value: 'FILE',
      description: 'Use this existing root certificate (PEM) instead of making one',
    },
    'import-root-key': {
      type: 'string',
      value: 'FILE',
      description: 'Its key: used once to sign the issuing CA and the first root CRL, never copied',
    },
    'import-intermediate': {
      type: 'string',
      value: 'FILE',
      description: 'Use this existing issuing CA certificate (PEM), signed by the imported root',
    },
    'import-intermediate-key': {
      type: 'string',
      value: 'FILE',
      description: 'Its key, stored in DIR (encrypted with --passphrase-file when given)',
    },
    'external-ca': {
      type: 'string',
      value: 'URL',
      description:
        'Registration-authority mode: a cfssl-compatible signer at URL signs every certificate (needs --import-root)',
    },
    'external-ca-auth-key': {
      type: 'string',
      value: 'FILE',
      description: 'Hex HMAC key shared with the signer (0600): requests go to /api/v1/cfssl/authsign',
    },
    'external-ca-tls-ca': {
      type: 'string',
      value: 'FILE',
      description: "CA certificate (PEM) of the signer's HTTPS certificate",
    },
    'external-ca-tls-cert': {
      type: 'string',
      value: 'FILE',
      description: 'Client certificate (PEM) for mutual TLS to the signer',
    },
    'external-ca-tls-key': { type: 'string', value: 'FILE', description: 'Its key (0600)' },
    'external-ca-profile': {
      type: 'string',
      multiple: true,
      value: 'ROLE=PROFILE',
      description:
        "The signer profile for a role (default: the role's profile name); ca-server is the CA's own HTTPS certificate",
    },
    json: { type: 'boolean', description: 'Print what was created as JSON' },
  },
  notes: [
    'Refuses a directory that is not empty: an existing CA is never overwritten.',
    'Importing (docs/operations.md, "Bringing your own CA"): --import-root with --import-root-key makes a new issuing CA under that root; --import-root with --import-intermediate and --import-intermediate-key uses both as they are. Everything is checked first (chain, CA flags, key usages, path length, extended key usage, keys, lifetimes against the roles); a problem exits 65 (GH_CA_IMPORT_INVALID) and creates nothing. Encrypted imported keys are read with --passphrase-file. Without --import-root-key, the root CRL is left to the root\'s own PKI (crl.rootCrl: external).',
    'External signer (docs/operations.md, "External signer"): --external-ca URL --import-root ROOT [--import-intermediate CERT] keeps enrollment, names, inventory, revocation and audit here and sends each prepared request to the signer; every certificate it returns is checked (key, subject, SANs, EKU, CA:FALSE, lifetime, chain) before it is recorded. The admin certificate is signed by it during init, so an unreachable signer exits 69 and creates nothing. Its file paths are written to gatehouse.yaml as absolute paths.',
  ],
  async run(ctx) {
    const keyType = str(ctx, 'key-type') ?? 'p256';
    if (!isKeyType(keyType)) throw new GatehouseError('GH_USAGE', `--key-type must be one of ${KEY_TYPES.join(', ')}`);
    const { initCa } = await import('../../ca/init.js');
    const result = await initCa({
      dir: str(ctx, 'dir')!,
      keyType,
      ...(str(ctx, 'name') ? { org: str(ctx, 'name')! } : {}),
      ...(str(ctx, 'trust-domain') ? { trustDomain: str(ctx, 'trust-domain')! } : {}),
      ...(str(ctx, 'root-key-out') ? { rootKeyOut: str(ctx, 'root-key-out')! } : {}),
      ...(str(ctx, 'passphrase-file') ? { passphraseFile: str(ctx, 'passphrase-file')! } : {}),
      ...(str(ctx, 'listen') ? { listen: str(ctx, 'listen')! } : {}),
      ...((str(ctx, 'store-url') ?? ctx.env.GATEHOUSE_STORE_URL)
        ? { storeUrl: (str(ctx, 'store-url') ?? ctx.env.GATEHOUSE_STORE_URL)! }
        : {}),
      ...(str(ctx, 'import-root') ||
      str(ctx, 'import-intermediate') ||
      str(ctx, 'import-root-key') ||
      str(ctx, 'import-intermediate-key')
        ? { importPaths: importPathsOf(ctx) }
        : {}),
      ...externalCaOf(ctx),
    });
    if (flag(ctx, 'json')) {
      return void ctx.out(
        json({
          dir: result.dir,
          rootFingerprint: result.rootFingerprint,
          rootKey: result.rootKeyPath,
          rootKeyOffline: result.rootKeyPath === null || Boolean(str(ctx, 'root-key-out')),
          imported: result.imported,
          externalCa: result.externalCa,
          adminDir: result.adminDir,
          config: result.configPath,
        }),
      );
    }
    ctx.out(
      `Created a CA in ${result.dir}${result.imported.root ? ` with the imported root${result.imported.intermediate ? ' and issuing CA' : ''}` : ''}\n\n`,
    );
    const rootKeyLine =
      result.rootKeyPath === null
        ? str(ctx, 'import-root-key')
          ? `${str(ctx, 'import-root-key')}  (used once, not copied: keep it offline)`
          : 'not held by this CA (its own PKI publishes the root CRL)'
        : `${result.rootKeyPath}${str(ctx, 'root-key-out') ? '  (offline: keep it away from this machine)' : ''}`;
    ctx.out(
      keyValues([
        ['root fingerprint (SHA-256)', result.rootFingerprint],
        ['root key', rootKeyLine],
        ...(result.externalCa
          ? [
              [
                'signer',
                `${result.externalCa}  (external CA: it signs every certificate, Gatehouse checks each one)`,
              ] as [string, string],
            ]
          : []),
        ['admin identity', result.adminDir],
        ['config', result.configPath],
      ]),
    );
    ctx.out(
      `\nNext:\n  gatehouse ca serve --dir ${result.dir}\n  gatehouse token create --dir ${result.dir} --role web\n`,
    );
  },
};

function externalCaOf(ctx: Parameters<CommandSpec['run']>[0]): { externalCa?: ExternalCaOptions } {
  const url = str(ctx, 'external-ca');
  const files = {
    authKeyFile: str(ctx, 'external-ca-auth-key'),
    tlsCa: str(ctx, 'external-ca-tls-ca'),
    tlsCert: str(ctx, 'external-ca-tls-cert'),
    tlsKey: str(ctx, 'external-ca-tls-key'),
  };
  const profileArgs = list(ctx, 'external-ca-profile');
  if (!url) {
    if (Object.values(files).some(Boolean) || profileArgs.length)
      throw new GatehouseError('GH_USAGE', 'the --external-ca-* options need --external-ca URL');
    return {};
  }
  const profiles: Record<string, string> = {};
  for (const arg of profileArgs) {
    const m = /^([a-z0-9-]+)=([A-Za-z0-9_.-]{1,64})$/.exec(arg);
    if (!m)
      throw new GatehouseError(
        'GH_USAGE',
        `--external-ca-profile ${JSON.stringify(arg)}: write ROLE=PROFILE, e.g. web=corp-client`,
      );
    profiles[m[1]!] = m[2]!;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GatehouseError(
      'GH_USAGE',
      `--external-ca ${JSON.stringify(url)} is not a URL; give the signer's base URL, e.g. https://signer.example.internal:8888`,
    );
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw new GatehouseError('GH_USAGE', `--external-ca must be an http:// or https:// URL, not ${parsed.protocol}`);
  return {
    externalCa: {
      url,
      ...Object.fromEntries(Object.entries(files).filter(([, v]) => v)),
      ...(profileArgs.length ? { profiles } : {}),
    },
  };
}

function importPathsOf(ctx: Parameters<CommandSpec['run']>[0]): {
  root: string;
  rootKey?: string;
  intermediate?: string;
  intermediateKey?: string;
} {
  const root = str(ctx, 'import-root');
  if (!root)
    throw new GatehouseError(
      'GH_USAGE',
      '--import-root FILE is needed with the other --import-* options: the root the imported PKI chains to',
    );
  return {
    root,
    ...(str(ctx, 'import-root-key') ? { rootKey: str(ctx, 'import-root-key')! } : {}),
    ...(str(ctx, 'import-intermediate') ? { intermediate: str(ctx, 'import-intermediate')! } : {}),
    ...(str(ctx, 'import-intermediate-key') ? { intermediateKey: str(ctx, 'import-intermediate-key')! } : {}),
  };
}
