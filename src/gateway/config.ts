/**
 * The gateway configuration: one YAML or JSON file, or the equivalent flags for the simple
 * case (as with ghostunnel). Both become the same validated, frozen object. An unknown key or a
 * bad value is refused with its path (`routes[1].upstreams[0]: …`). Relative file paths are
 * resolved against the config file's folder, so a config can move with its certificates.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import YAML from 'yaml';
import { GatehouseError } from '../errors/errors.js';
import { durationSchema, hostPortSchema } from '../config/schema-parts.js';
import { formatIssues } from '../config/ca-config.js';
import { deepFreeze } from '../config/deep-freeze.js';
import { normalizePath } from '../policy/index.js';
import { IDENTITY_HEADER_PRESETS } from './identity-headers/identity-headers.js';

const upstreamUrl = z.string().transform((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a URL like http://127.0.0.1:9000` });
    return z.NEVER;
  }
  if (url.protocol !== 'http:')
    ctx.addIssue({
      code: 'custom',
      message: `${text}: only http:// upstreams are supported (the gateway terminates TLS)`,
    });
  if (url.search || url.hash || url.username)
    ctx.addIssue({ code: 'custom', message: `${text}: an upstream is scheme, host, port and an optional base path` });
  return url.href.replace(/\/$/, '');
});

/** `api.example.com`, `*.example.com` or `*` (any host). Matched without the port, case-insensitively. */
const hostPattern = z
  .string()
  .regex(
    /^(\*|(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$/,
    'host: a DNS name, *.domain, or *',
  )
  .transform((h) => h.toLowerCase());

const routeSchema = z.strictObject({
  host: hostPattern.default('*'),
  pathPrefix: z
    .string()
    .regex(/^\/[^?#\\]*$/, 'pathPrefix: starts with / and has no ? # or \\')
    // Routes match the normalized path, so a prefix that normalization would change could never match.
    .refine((p) => {
      const n = normalizePath(p.replace(/\/+$/, '') || '/');
      return n.ok && n.path === (p.replace(/\/+$/, '') || '/');
    }, 'pathPrefix: must be a normalized path (no //, . or .. segments, no percent-encoding)')
    .default('/'),
  upstreams: z.array(upstreamUrl).min(1, 'at least one upstream'),
  /** Per-route override of upstream.timeout. */
  timeout: durationSchema('100ms', '1h').optional(),
});

export const gatewayConfigSchema = z.strictObject({
  listen: hostPortSchema,
  tls: z.strictObject({
    cert: z.string().min(1),
    key: z.string().min(1),
    clientCa: z.string().min(1),
    /** DNS names and IPs clients use to reach the gateway: its certificate must cover each. */
    serverNames: z.array(z.string().min(1)).default([]),
    /** The server certificate may come from a CA outside clientCa (a public or corporate CA). */
    serverCertFromOtherCa: z.boolean().default(false),
  }),
  policy: z.string().min(1).nullable().default(null),
  headers: z.enum(IDENTITY_HEADER_PRESETS).default('default'),
  routes: z.array(routeSchema).min(1, 'at least one route'),
  upstream: z
    .strictObject({
      timeout: durationSchema('100ms', '1h').default(30_000 as never),
      connectTimeout: durationSchema('100ms', '5m').default(5_000 as never),
      /** Passive failure detection: after this many consecutive failures an upstream rests… */
      maxFails: z.number().int().min(1).max(1000).default(3),
      /** …for this long before it is tried again. */
      failTimeout: durationSchema('1s', '1h').default(10_000 as never),
      unsafeAllowNonLocal: z.boolean().default(false),
    })
    .prefault({}),
  revocation: z
    .strictObject({
      crl: z.array(z.string().min(1)).default([]),
      refreshInterval: durationSchema('1s', '24h').default(60_000 as never),
      grace: durationSchema('0s', '30d').default(3_600_000 as never),
      unsafeFailOpenOnStaleCrl: z.boolean().default(false),
    })
    .prefault({}),
  limits: z
    .strictObject({
      headersTimeout: durationSchema('1s', '5m').default(15_000 as never),
      requestTimeout: durationSchema('1s', '1h').default(60_000 as never),
      keepAliveTimeout: durationSchema('1s', '1h').default(65_000 as never),
      maxHeaderBytes: z
        .number()
        .int()
        .min(1024)
        .max(1024 * 1024)
        .default(16 * 1024),
      drainTimeout: durationSchema('0s', '10m').default(30_000 as never),
    })
    .prefault({}),
  admin: z
    .strictObject({
      listen: hostPortSchema.nullable().default(null),
    })
    .prefault({}),
  /** Where posture rules ask for a device's standing (gateway.md, "Posture"). */
  posture: z
    .strictObject({
      /** The CA's URL (https://); needed when a policy rule requires posture. */
      ca: z
        .string()
        .regex(/^https:\/\/[^\s?#]+$/, 'an https:// URL of the CA, like https://ca.example.internal:8443')
        .nullable()
        .default(null),
      /** The CA's root bundle for its HTTPS certificate; the client CA bundle (tls.clientCa) when unset. */
      trust: z.string().min(1).nullable().default(null),
      /** A standing is reused for this long before the CA is asked again. */
      refresh: durationSchema('1s', '1h').default(30_000 as never),
      /** When the CA cannot be reached, a standing fetched no longer ago than this still decides; then: refused. */
      staleFor: durationSchema('0s', '24h').default(300_000 as never),
      timeout: durationSchema('100ms', '30s').default(2_000 as never),
      unsafeAllowWhenUnavailable: z.boolean().default(false),
    })
    .prefault({}),
  http2: z.boolean().default(true),
  workers: z.number().int().min(1).max(256).nullable().default(null),
  /** The refusal body for policy denials, e.g. the WoTT demo's "You shall not pass!". */
  denyMessage: z.string().max(4096).nullable().default(null),
});

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type RouteConfig = GatewayConfig['routes'][number];

/** Flags for the simple case; the same keys as the file. */
export interface GatewayFlags {
  listen?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  clientCa?: string | undefined;
  upstream?: string[] | undefined;
  policy?: string | undefined;
  crl?: string[] | undefined;
  postureCa?: string | undefined;
  headers?: string | undefined;
  adminListen?: string | undefined;
  workers?: number | undefined;
  unsafeAllowNonLocalUpstream?: boolean | undefined;
}

export function parseGatewayConfig(
  raw: unknown,
  source: string,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Readonly<GatewayConfig> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new GatehouseError('GH_CONFIG_INVALID', `${source}: expected a mapping of keys at the top level`);
  }
  const withEnv = applyEnvOverrides(raw as Record<string, unknown>, env);
  const parsed = gatewayConfigSchema.safeParse(withEnv);
  if (!parsed.success) throw new GatehouseError('GH_CONFIG_INVALID', `${source}: ${formatIssues(parsed.error.issues)}`);
  return deepFreeze(resolvePaths(parsed.data, baseDir));
}

export function loadGatewayConfig(path: string, env: NodeJS.ProcessEnv = process.env): Readonly<GatewayConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `cannot read gateway config ${path}: ${(cause as NodeJS.ErrnoException).code}`,
      { cause },
    );
  }
  let raw: unknown;
  try {
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    raw = YAML.parse(text, { prettyErrors: true, uniqueKeys: true });
  } catch (cause) {
    throw new GatehouseError(
      'GH_CONFIG_INVALID',
      `${path}: not valid YAML or JSON: ${(cause as Error).message.split('\n')[0]}`,
      { cause },
    );
  }
  return parseGatewayConfig(raw, path, dirname(resolve(path)), env);
}

export function gatewayConfigFromFlags(
  flags: GatewayFlags,
  env: NodeJS.ProcessEnv = process.env,
): Readonly<GatewayConfig> {
  const missing = [
    ...(!flags.listen && !env.GATEHOUSE_GATEWAY_LISTEN ? ['--listen'] : []),
    ...(['cert', 'key', 'clientCa'] as const)
      .filter((k) => !flags[k])
      .map((k) => `--${k === 'clientCa' ? 'client-ca' : k}`),
    ...(!flags.upstream?.length ? ['--upstream'] : []),
  ];
  if (missing.length) throw new GatehouseError('GH_USAGE', `missing ${missing.join(', ')} (or pass --config FILE)`);
  // A flag beats the environment (as for `ca serve`).
  const fromEnv = applyEnvOverrides({}, env) as { listen?: string; admin?: { listen?: string }; workers?: number };
  const workers = flags.workers ?? fromEnv.workers;
  const raw: Record<string, unknown> = {
    listen: flags.listen ?? fromEnv.listen,
    tls: { cert: flags.cert, key: flags.key, clientCa: flags.clientCa },
    routes: [{ upstreams: flags.upstream }],
    upstream: { unsafeAllowNonLocal: flags.unsafeAllowNonLocalUpstream === true },
    revocation: { crl: flags.crl ?? [] },
    ...(flags.postureCa !== undefined ? { posture: { ca: flags.postureCa } } : {}),
    admin: { listen: flags.adminListen ?? fromEnv.admin?.listen ?? null },
    ...(flags.policy !== undefined ? { policy: flags.policy } : {}),
    ...(flags.headers !== undefined ? { headers: flags.headers } : {}),
    ...(workers !== undefined ? { workers } : {}),
  };
  return parseGatewayConfig(raw, 'flags', process.cwd(), {});
}

/** Containers set the addresses from the environment without editing the file. */
function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = { ...raw };
  if (env.GATEHOUSE_GATEWAY_LISTEN) out.listen = env.GATEHOUSE_GATEWAY_LISTEN;
  if (env.GATEHOUSE_GATEWAY_ADMIN_LISTEN)
    out.admin = { ...(raw.admin as object | undefined), listen: env.GATEHOUSE_GATEWAY_ADMIN_LISTEN };
  if (env.GATEHOUSE_GATEWAY_WORKERS) out.workers = Number(env.GATEHOUSE_GATEWAY_WORKERS);
  return out;
}

function resolvePaths(config: GatewayConfig, baseDir: string): GatewayConfig {
  const file = (p: string) => resolve(baseDir, p);
  return {
    ...config,
    tls: { ...config.tls, cert: file(config.tls.cert), key: file(config.tls.key), clientCa: file(config.tls.clientCa) },
    policy: config.policy === null ? null : file(config.policy),
    revocation: { ...config.revocation, crl: config.revocation.crl.map((s) => (/^https?:\/\//.test(s) ? s : file(s))) },
    posture: { ...config.posture, trust: config.posture.trust === null ? null : file(config.posture.trust) },
  };
}
