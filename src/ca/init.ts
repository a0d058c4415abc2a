/**
 * `gatehouse ca init`: a root, an online issuing intermediate, an admin identity, the config
 * and the database, in one new 0700 directory. Any failure removes what was created, so there
 * is never a half-made CA; an existing directory with content is never touched.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { GatehouseError } from '../errors/errors.js';
import { parseCaConfig, defaultRoles, publicUrlOf } from '../config/ca-config.js';
import { writeNewFile } from '../files/atomic-write.js';
import { writeIdentityDir } from '../files/identity-dir.js';
import { writeAgentSettings } from '../files/agent-settings.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { buildIntermediateCertificate, buildRootCertificate } from '../pki/ca-certificates.js';
import { generatePrivateKey, privateKeyToPem, type KeyType } from '../pki/keys.js';
import { prepareSigningAuthority } from '../pki/leaf-certificate.js';
import { parseCertificate, sha256Hex } from '../pki/certificate.js';
import type { KeyObject } from 'node:crypto';
import { toPem } from '../pki/pem.js';
import { describeStore, openCaStore, urlWithoutPassword } from './store-open.js';
import type { Store } from '../store/store.js';
import { Authority } from './authority.js';
import { CA_FILES, readPassphrase } from './ca-dir.js';
import { generateRootCrl } from './crl-publisher.js';
import { createMasterKeyFile } from '../secrets/master-key.js';
import { readImportedPki, type ImportPaths } from './import-pki.js';
import { externalCaFrom } from './external-ca.js';

export interface InitOptions {
  dir: string;
  org?: string;
  trustDomain?: string;
  keyType?: KeyType;
  rootKeyOut?: string;
  passphraseFile?: string;
  listen?: string;
  now?: Date;
  actor?: string;
  logger?: Logger;
  /** An existing PKI to use instead of a new root (and intermediate): import-pki.ts checks it first. */
  importPaths?: ImportPaths;
  /** Registration-authority mode: this signer signs every certificate (needs importPaths: its root). */
  externalCa?: ExternalCaOptions;
  /** A postgres:// URL: the state lives there from the start (written to gatehouse.yaml without its password); `sqlite` or none: the file in DIR. */
  storeUrl?: string;
}

/** `ca init --external-ca …`: written to gatehouse.yaml's externalCa with absolute paths. */
export interface ExternalCaOptions {
  url: string;
  authKeyFile?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Role → signer profile; a role not listed uses its profile name. */
  profiles?: Record<string, string>;
}

export interface InitResult {
  dir: string;
  rootFingerprint: string;
  /** Null when the root was imported: its key, if given, was used once and never copied. */
  rootKeyPath: string | null;
  /** What was imported, when anything was. */
  imported: { root: boolean; intermediate: boolean };
  /** The external CA's endpoint in registration-authority mode. */
  externalCa: string | null;
  adminDir: string;
  configPath: string;
}

const YEAR_MS = 365 * 86_400_000;

export async function initCa(options: InitOptions): Promise<InitResult> {
  const dir = resolve(options.dir);
  const org = options.org ?? 'Gatehouse';
  const trustDomain = options.trustDomain ?? 'gatehouse.internal';
  const keyType = options.keyType ?? 'p256';
  const now = options.now ?? new Date();
  const passphrase = readPassphrase(options.passphraseFile);
  const external = options.externalCa ?? null;
  if (external && !options.importPaths)
    throw new GatehouseError(
      'GH_USAGE',
      '--external-ca needs --import-root FILE: the root of the external CA, which join tokens pin and every certificate must chain to',
    );
  const imports = options.importPaths && external ? { ...options.importPaths, external: true } : options.importPaths;
  if (imports && options.rootKeyOut)
    throw new GatehouseError(
      'GH_USAGE',
      '--root-key-out applies to a new root; an imported root key is used where it is and never copied',
    );
  const rootKeyPath = imports ? null : options.rootKeyOut ? resolve(options.rootKeyOut) : join(dir, CA_FILES.rootKey);

  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new GatehouseError(
      'GH_CA_EXISTS',
      existsSync(join(dir, CA_FILES.config))
        ? `a CA already exists in ${dir}; Gatehouse never overwrites a CA`
        : `${dir} is not empty; choose an empty or new directory`,
    );
  }
  if (options.rootKeyOut && rootKeyPath && existsSync(rootKeyPath))
    throw new GatehouseError('GH_CA_EXISTS', `${rootKeyPath} already exists; refusing to overwrite a key`);

  const inputs: ConfigInputs = {
    org,
    trustDomain,
    listen: options.listen,
    rootKeyOffline: Boolean(options.rootKeyOut) || Boolean(imports),
    passphraseFile: options.passphraseFile,
    rootCrlExternal: Boolean(imports && !imports.rootKey),
    externalCa: external,
    storeUrl: options.storeUrl && options.storeUrl !== 'sqlite' ? options.storeUrl : null,
  };
  // The generated file says where the store is; the environment must not make this run differ from it.
  const { GATEHOUSE_STORE_URL: _ignored, ...env } = process.env;
  const config = parseCaConfig(configText(inputs), 'generated config', env);
  // Everything imported is checked before the directory exists: a refusal leaves nothing behind.
  const imported = imports ? readImportedPki(imports, passphrase, config, now) : null;
  const externalCa = externalCaFrom(config, dir);
  const createdDir = !existsSync(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  try {
    const skewed = new Date(now.getTime() - config.limits.backdate);
    const rootKey = imported ? imported.rootKey : generatePrivateKey(keyType);
    const rootDer =
      imported?.rootDer ??
      (await buildRootCertificate(rootKey!, {
        commonName: `${org} Root CA`,
        organization: org,
        notBefore: skewed,
        notAfter: new Date(now.getTime() + 10 * YEAR_MS),
      }));
    let intermediateKey: KeyObject | null;
    let intermediateDer: Buffer;
    if (imported?.externalIssuerDer) {
      intermediateKey = null;
      intermediateDer = imported.externalIssuerDer;
    } else if (imported?.intermediate) {
      ({ key: intermediateKey, der: intermediateDer } = imported.intermediate);
    } else {
      intermediateKey = generatePrivateKey(keyType);
      // Never beyond the root: a chain is valid only while every certificate in it is.
      const notAfter = new Date(Math.min(now.getTime() + 5 * YEAR_MS, parseCertificate(rootDer).notAfter.getTime()));
      intermediateDer = await buildIntermediateCertificate(
        intermediateKey,
        { certDer: rootDer, key: rootKey! },
        {
          commonName: `${org} Issuing CA`,
          organization: org,
          notBefore: skewed,
          notAfter,
        },
      );
    }

    if (rootKeyPath) writeNewFile(rootKeyPath, privateKeyToPem(rootKey!, passphrase), 0o600);
    if (intermediateKey)
      writeNewFile(join(dir, CA_FILES.intermediateKey), privateKeyToPem(intermediateKey, passphrase), 0o600);
    writeNewFile(join(dir, CA_FILES.rootCert), toPem('CERTIFICATE', rootDer), 0o644);
    writeNewFile(join(dir, CA_FILES.intermediateCert), toPem('CERTIFICATE', intermediateDer), 0o644);
    writeNewFile(join(dir, CA_FILES.config), configText(inputs), 0o600);
    // The secrets master key, encrypted with the passphrase like the CA keys (src/secrets/master-key.ts).
    const secretsKey = createMasterKeyFile(dir, passphrase, now);

    const store = await openCaStore(dir, config, { migrate: true });
    try {
      await assertStoreEmpty(store, dir, config);
      const actor = options.actor ?? 'local:init';
      if (rootKey) await generateRootCrl(store, prepareSigningAuthority(rootDer, rootKey), config, now);
      const authority = new Authority({
        config,
        store,
        rootDer,
        intermediateDer,
        intermediateKey,
        externalCa,
        logger: options.logger ?? silentLogger,
        now: () => now,
      });
      const adminKey = generatePrivateKey('p256');
      const admin = await authority.issueInternal(
        { role: 'admin', name: 'admin', profile: 'client', lifetimeMs: config.roles.admin!.lifetime },
        adminKey,
        { actor },
      );
      writeIdentityDir(join(dir, CA_FILES.adminDir), {
        keyPem: privateKeyToPem(adminKey),
        certPem: admin.chainPem,
        caPem: authority.rootPem,
      });
      writeAgentSettings(join(dir, CA_FILES.adminDir), {
        caUrl: publicUrlOf(config),
        rootFingerprint: authority.rootFingerprint,
      });
      await store.appendAudit([
        {
          time: now,
          type: 'ca.initialized',
          actor,
          details: {
            org,
            trustDomain,
            keyType,
            rootFingerprint: sha256Hex(rootDer),
            rootKeyOffline: inputs.rootKeyOffline,
            imported: {
              root: Boolean(imports),
              intermediate: Boolean(imported?.intermediate) || Boolean(imports?.intermediate),
            },
            externalCa: externalCa?.displayUrl ?? null,
            keysEncrypted: passphrase !== undefined,
            secretsMasterKeyId: secretsKey.current.id,
          },
        },
      ]);
    } finally {
      await store.close();
    }
    return {
      dir,
      rootFingerprint: sha256Hex(rootDer),
      rootKeyPath,
      imported: {
        root: Boolean(imports),
        intermediate: Boolean(imported?.intermediate) || Boolean(imports?.intermediate),
      },
      externalCa: externalCa?.displayUrl ?? null,
      adminDir: join(dir, CA_FILES.adminDir),
      configPath: join(dir, CA_FILES.config),
    };
  } catch (err) {
    if (createdDir) rmSync(dir, { recursive: true, force: true });
    else for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
    if (options.rootKeyOut && rootKeyPath) rmSync(rootKeyPath, { force: true });
    throw err;
  }
}

interface ConfigInputs {
  org: string;
  trustDomain: string;
  listen: string | undefined;
  rootKeyOffline: boolean;
  passphraseFile: string | undefined;
  rootCrlExternal: boolean;
  externalCa: ExternalCaOptions | null;
  storeUrl: string | null;
}

function configDocument(i: ConfigInputs): Record<string, unknown> {
  return {
    org: i.org,
    trustDomain: i.trustDomain,
    listen: i.listen ?? '127.0.0.1:8443',
    keys: {
      root: i.rootKeyOffline ? null : CA_FILES.rootKey,
      intermediate: i.externalCa ? null : CA_FILES.intermediateKey,
      passphraseFile: i.passphraseFile ? resolve(i.passphraseFile) : null,
    },
    ...(i.rootCrlExternal ? { crl: { rootCrl: 'external' } } : {}),
    ...(i.externalCa ? { externalCa: externalCaDocument(i.externalCa) } : {}),
    ...(i.storeUrl ? { store: { kind: 'postgres', url: urlWithoutPassword(i.storeUrl) } } : {}),
    roles: defaultRoles(i.trustDomain),
  };
}

function externalCaDocument(e: ExternalCaOptions): Record<string, unknown> {
  const abs = (file: string | undefined) => (file ? resolve(file) : null);
  if (Boolean(e.tlsCert) !== Boolean(e.tlsKey))
    throw new GatehouseError(
      'GH_USAGE',
      '--external-ca-tls-cert and --external-ca-tls-key go together (mutual TLS to the signer)',
    );
  if (e.tlsCert && !e.tlsCa)
    throw new GatehouseError(
      'GH_USAGE',
      "--external-ca-tls-cert needs --external-ca-tls-ca: the CA that signed the signer's HTTPS certificate",
    );
  return {
    url: e.url,
    authKeyFile: abs(e.authKeyFile),
    tls: e.tlsCa ? { ca: abs(e.tlsCa), cert: abs(e.tlsCert), key: abs(e.tlsKey) } : null,
    // Role → the signer's profile; a role not listed uses its profile name (client, server, both).
    profiles: e.profiles ?? {},
    timeout: '5s',
  };
}

function configText(i: ConfigInputs): string {
  const doc = new YAML.Document(configDocument(i));
  doc.commentBefore = [
    ' Gatehouse CA configuration. Every key is described in docs/config.md.',
    ' Environment overrides: GATEHOUSE_LISTEN, GATEHOUSE_PUBLIC_URL, GATEHOUSE_PASSPHRASE_FILE, GATEHOUSE_METRICS_LISTEN.',
    ' Add `metrics: { listen: 127.0.0.1:9091 }` to serve Prometheus /metrics and /healthz (docs/operations.md).',
    ' publicUrl (default https://<listen>) is the URL agents use and certificates name for the CRL.',
  ].join('\n');
  return doc.toString();
}

/**
 * A shared PostgreSQL may already hold a CA (this one's replicas use copies of its directory, not
 * `ca init`) or what a failed init left: either way, a new CA there would mix two inventories.
 */
async function assertStoreEmpty(store: Store, dir: string, config: Parameters<typeof describeStore>[1]): Promise<void> {
  if (store.kind === 'sqlite') return;
  const [first] = await store.listAudit({ limit: 1 });
  if (first || (await store.listCerts({ limit: 1 })).length > 0) {
    throw new GatehouseError(
      'GH_CA_EXISTS',
      `${describeStore(dir, config)} already holds a CA's state (first event ${first ? `${first.type} at ${first.time.toISOString()}` : 'none'}): a replica of that CA needs a copy of its directory, not \`ca init\`; for a new CA, create an empty database`,
    );
  }
}
