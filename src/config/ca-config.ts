/**
 * The CA configuration: one YAML file in the CA directory, validated once with a strict schema
 * (an unknown key is an error naming its path), then frozen. A few keys have environment
 * overrides for containers: GATEHOUSE_LISTEN, GATEHOUSE_PUBLIC_URL, GATEHOUSE_PASSPHRASE_FILE,
 * GATEHOUSE_METRICS_LISTEN.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import YAML from 'yaml';
import { GatehouseError } from '../errors/errors.js';
import { durationSchema, hostPortSchema, postureRequirementSchema } from './schema-parts.js';
import { DNS_PATTERN_RE, NAME_PATTERN_RE, ROLE_RE, TRUST_DOMAIN_RE } from './patterns.js';
import { deepFreeze } from './deep-freeze.js';

/**
 * A request rate limit as a token bucket: `burst` requests at once, then `rate` per second
 * (fractions allowed: 0.5 is one every 2 s). `null` turns the limit off.
 */
const rateLimitSchema = z
  .strictObject({
    rate: z.number().positive('rate: requests per second, above 0 (write null to turn the limit off)').max(100_000),
    burst: z.number().int().min(1).max(1_000_000),
  })
  .nullable();

/**
 * Per source: 20 requests per second, bursts of 50 (issue 11). Per token: the same burst, so 50
 * machines enrolling at once with one multi-use token get through, then 5 per second. Per
 * certificate: an agent renews once per lifetime and retries with backoff from 1 s.
 */
export const DEFAULT_RATE_LIMITS = {
  enroll: { perSource: { rate: 20, burst: 50 }, perToken: { rate: 5, burst: 50 } },
  renew: { perSource: { rate: 20, burst: 50 }, perCertificate: { rate: 1, burst: 5 } },
} as const;

const roleSchema = z.strictObject({
  profile: z.enum(['client', 'server', 'both']),
  lifetime: durationSchema('10s', '90d').default((24 * 3_600_000) as never),
  names: z.string().regex(NAME_PATTERN_RE, 'name pattern: letters, digits, . _ - and *').default('*'),
  dns: z.array(z.string().regex(DNS_PATTERN_RE, 'DNS name or *.domain pattern')).default([]),
  ip: z.array(z.string().refine((v) => isIP(v) !== 0, 'IP address')).default([]),
  /** Renewal needs a posture that meets this (posture/requirement.ts); enrollment does not (no report yet). */
  posture: postureRequirementSchema.optional(),
});

export const caConfigSchema = z
  .strictObject({
    org: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/, 'organization: letters, digits, space . _ -'),
    trustDomain: z.string().regex(TRUST_DOMAIN_RE, 'trust domain: lowercase DNS-like name'),
    listen: hostPortSchema.default('127.0.0.1:8443'),
    publicUrl: z.url({ protocol: /^https$/ }).optional(),
    serverNames: z.array(z.string().min(1)).default([]),
    keys: z.strictObject({
      root: z.string().min(1).nullable(),
      // null in registration-authority mode: the external CA (externalCa) holds the issuing key.
      intermediate: z.string().min(1).nullable(),
      passphraseFile: z.string().min(1).nullable().default(null),
    }),
    crl: z
      .strictObject({
        lifetime: durationSchema('1m', '30d').default((24 * 3_600_000) as never),
        renewBefore: durationSchema('30s', '29d').default((8 * 3_600_000) as never),
        rootLifetime: durationSchema('1h', '400d').default((180 * 86_400_000) as never),
        // Who publishes the root's CRL: this CA (with the root key, online or by `ca root-crl`), or
        // the PKI an imported root belongs to, when Gatehouse never holds that root's key.
        rootCrl: z.enum(['gatehouse', 'external']).default('gatehouse'),
      })
      .prefault({}),
    limits: z
      .strictObject({
        maxBodyBytes: z
          .number()
          .int()
          .min(1024)
          .max(1024 * 1024)
          .default(64 * 1024),
        backdate: durationSchema('0s', '1h').default(60_000 as never),
        // Rate limits of POST /enroll and POST /renew, answered 429 with Retry-After past them.
        enroll: z
          .strictObject({
            perSource: rateLimitSchema.default(DEFAULT_RATE_LIMITS.enroll.perSource),
            perToken: rateLimitSchema.default(DEFAULT_RATE_LIMITS.enroll.perToken),
          })
          .prefault({}),
        renew: z
          .strictObject({
            perSource: rateLimitSchema.default(DEFAULT_RATE_LIMITS.renew.perSource),
            perCertificate: rateLimitSchema.default(DEFAULT_RATE_LIMITS.renew.perCertificate),
          })
          .prefault({}),
      })
      .prefault({}),
    renewal: z
      .strictObject({
        // How long a renewal whose answer was lost may be asked again with the same new key and get
        // the same certificate back (docs/lineage.md).
        retryGrace: durationSchema('0s', '1h').default(600_000 as never),
      })
      .prefault({}),
    tokens: z
      .strictObject({
        defaultTtl: durationSchema('1m', '30d').default(3_600_000 as never),
        maxTtl: durationSchema('1m', '365d').default((30 * 86_400_000) as never),
      })
      .prefault({}),
    secrets: z
      .strictObject({
        // How long the previous version of a rotated secret stays readable (`secret rotate --overlap`);
        // 0s deletes it at once (docs/secrets.md).
        rotationOverlap: durationSchema('0s', '30d').default(3_600_000 as never),
      })
      .prefault({}),
    // Registration-authority mode (docs/operations.md#external-signer): a cfssl-compatible signer
    // signs every certificate; Gatehouse decides what it asks for and checks what comes back.
    externalCa: z
      .strictObject({
        url: z.url({ protocol: /^https?$/ }),
        // A hex HMAC key shared with the signer (cfssl auth_keys): requests go to /authsign.
        authKeyFile: z.string().min(1).nullable().default(null),
        tls: z
          .strictObject({
            ca: z.string().min(1),
            cert: z.string().min(1).nullable().default(null),
            key: z.string().min(1).nullable().default(null),
          })
          .nullable()
          .default(null),
        // The signer's profile for each role; a role not listed uses its profile name (client, server, both).
        profiles: z.record(z.string(), z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'cfssl profile name')).default({}),
        timeout: durationSchema('1s', '60s').default(5000 as never),
      })
      .nullable()
      .default(null),
    // Where the CA's state lives (docs/operations.md#postgresql): the embedded SQLite file in the
    // CA directory, or a PostgreSQL several `ca serve` replicas share.
    store: z
      .strictObject({
        kind: z.enum(['sqlite', 'postgres']).default('sqlite'),
        // postgres://user@host:port/db?sslmode=verify-full; the PG* variables fill what it leaves out.
        // Keep the password out of it: PGPASSWORD or ~/.pgpass.
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\/\S*$/, 'a postgres:// URL')
          .nullable()
          .default(null),
        poolMax: z.number().int().min(1).max(200).default(10),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        // Plain HTTP /metrics and /healthz; off unless set. Bind it to loopback or a private address.
        listen: hostPortSchema.nullable().default(null),
      })
      .prefault({}),
    roles: z
      .record(z.string().regex(ROLE_RE, 'role: lowercase letters, digits and -'), roleSchema)
      .refine((r) => Object.keys(r).length > 0, 'at least one role'),
  })
  .superRefine((c, ctx) => {
    if (c.crl.renewBefore >= c.crl.lifetime)
      ctx.addIssue({ code: 'custom', path: ['crl', 'renewBefore'], message: 'must be shorter than crl.lifetime' });
    if (c.externalCa !== null && c.keys.intermediate !== null)
      ctx.addIssue({
        code: 'custom',
        path: ['keys', 'intermediate'],
        message: 'must be null when externalCa is set: the external CA holds the issuing key',
      });
    if (c.externalCa === null && c.keys.intermediate === null)
      ctx.addIssue({
        code: 'custom',
        path: ['keys', 'intermediate'],
        message: 'the issuing key file is needed unless externalCa is set',
      });
    if (c.externalCa?.tls && (c.externalCa.tls.cert === null) !== (c.externalCa.tls.key === null))
      ctx.addIssue({
        code: 'custom',
        path: ['externalCa', 'tls'],
        message: 'give both cert and key (mutual TLS to the signer), or neither',
      });
    if (c.store.kind === 'sqlite' && c.store.url !== null)
      ctx.addIssue({ code: 'custom', path: ['store', 'url'], message: 'is for kind: postgres' });
    if (c.metrics.listen !== null && c.metrics.listen === c.listen && !c.listen.endsWith(':0'))
      ctx.addIssue({ code: 'custom', path: ['metrics', 'listen'], message: 'must differ from listen' });
  });

export type CaConfig = z.output<typeof caConfigSchema>;
export type RoleConfig = CaConfig['roles'][string];
export type RateLimitConfig = NonNullable<CaConfig['limits']['enroll']['perSource']>;

export const CA_CONFIG_FILE = 'gatehouse.yaml';

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const path = issue.path
        .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
        .join('');
      const keys =
        issue.code === 'unrecognized_keys'
          ? `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}`
          : issue.message;
      return `${path || '(top level)'}: ${keys}`;
    })
    .join('; ');
}

export function parseCaConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): Readonly<CaConfig> {
  let raw: unknown;
  try {
    raw = YAML.parse(text, { prettyErrors: true, uniqueKeys: true });
  } catch (cause) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `${source}: not valid YAML: ${(cause as Error).message.split('\n')[0]}`,
      { cause },
    );
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new GatehouseError('GH_CONFIG_INVALID', `${source}: expected a mapping of keys at the top level`);
  }
  const withEnv = applyEnvOverrides(raw as Record<string, unknown>, env);
  const parsed = caConfigSchema.safeParse(withEnv);
  if (!parsed.success) throw new GatehouseError('GH_CONFIG_INVALID', `${source}: ${formatIssues(parsed.error.issues)}`);
  return deepFreeze(parsed.data);
}

export function loadCaConfig(path: string, env: NodeJS.ProcessEnv = process.env): Readonly<CaConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new GatehouseError(
      code === 'ENOENT' ? 'GH_CA_NOT_FOUND' : 'GH_CONFIG_INVALID',
      code === 'ENOENT' ? `no CA config at ${path}; run \`gatehouse ca init\` first` : `cannot read ${path}: ${code}`,
      { cause },
    );
  }
  return parseCaConfig(text, path, env);
}

function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = { ...raw };
  if (env.GATEHOUSE_LISTEN) out.listen = env.GATEHOUSE_LISTEN;
  if (env.GATEHOUSE_PUBLIC_URL) out.publicUrl = env.GATEHOUSE_PUBLIC_URL;
  if (env.GATEHOUSE_PASSPHRASE_FILE)
    out.keys = { ...(raw.keys as object), passphraseFile: env.GATEHOUSE_PASSPHRASE_FILE };
  if (env.GATEHOUSE_METRICS_LISTEN)
    out.metrics = { ...(raw.metrics as object | undefined), listen: env.GATEHOUSE_METRICS_LISTEN };
  // `sqlite` names the embedded store; anything else is a PostgreSQL URL.
  if (env.GATEHOUSE_STORE_URL) {
    out.store =
      env.GATEHOUSE_STORE_URL === 'sqlite'
        ? { ...(raw.store as object | undefined), kind: 'sqlite', url: null }
        : { ...(raw.store as object | undefined), kind: 'postgres', url: env.GATEHOUSE_STORE_URL };
  }
  return out;
}

/** The URL agents use and CRL distribution points name. */
export function publicUrlOf(config: CaConfig): string {
  return config.publicUrl ?? `https://${config.listen}`;
}

export function defaultRoles(trustDomain: string): Record<string, unknown> {
  return {
    admin: { profile: 'client', lifetime: '24h', names: '*' },
    web: { profile: 'client', lifetime: '24h', names: '*' },
    gateway: {
      profile: 'server',
      lifetime: '24h',
      names: '*',
      dns: ['localhost', `*.${trustDomain}`],
      ip: ['127.0.0.1'],
    },
  };
}
