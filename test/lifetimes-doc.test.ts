/**
 * The lifetimes table of docs/operations.md against the code, so it cannot drift: each default is
 * measured where it can be (the certificates and CRLs a real `ca init` and `ca serve` make, a
 * token made without --ttl), read from the parsed config defaults otherwise, and each range the
 * table gives for a config key is checked at both ends against the config schema.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { DEFAULT_REVOCATION_CHECK_INTERVAL_MS } from '../src/agent/renew-scheduler.js';
import { renewalTime } from '../src/agent/renew-timing.js';
import { crlRenewBeforeMs, loadPublishedCrl } from '../src/ca/crl-publisher.js';
import { COMMANDS } from '../src/cli/commands/index.js';
import { loadCaConfig, parseCaConfig, type CaConfig } from '../src/config/ca-config.js';
import { parseDurationMs } from '../src/config/duration.js';
import { parseGatewayConfig } from '../src/gateway/config.js';
import * as pki from '../src/pki/index.js';
import { startCaFixture, type CaFixture } from './helpers/ca-fixture.js';

const DAY = 86_400_000;

function lifetimeRows(): Map<string, { value: string; change: string }> {
  const doc = readFileSync('docs/operations.md', 'utf8');
  const start = doc.indexOf('<!-- lifetimes:start -->');
  const end = doc.indexOf('<!-- lifetimes:end -->');
  assert.ok(start > 0 && end > start, 'docs/operations.md has the lifetimes table between its markers');
  const rows = new Map<string, { value: string; change: string }>();
  for (const line of doc
    .slice(start, end)
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .slice(2)) {
    const [what, value, change] = line
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
    assert.ok(what && value && change, `three cells in ${line}`);
    assert.ok(!rows.has(what), `one row for ${what}`);
    rows.set(what, { value, change });
  }
  return rows;
}

/** The first backticked token of a cell, as milliseconds. */
function durationOf(cell: string): number {
  const token = /`([^`]+)`/.exec(cell)?.[1];
  const ms = token === undefined ? null : parseDurationMs(token);
  assert.ok(ms !== null, `"${cell}" starts with a duration in backticks`);
  return ms;
}

let fixture: CaFixture;
let config: Readonly<CaConfig>;
let configYaml: Record<string, unknown>;

/** A certificate's notAfter − notBefore, less the backdate (which only caps for lifetimes under ten backdates). */
function lifetimeOf(pem: string, backdateMs: number): number {
  const cert = pki.parseCertificate(pki.decodePem(pem, 'CERTIFICATE')[0]!);
  return cert.notAfter.getTime() - cert.notBefore.getTime() - backdateMs;
}

before(async () => {
  fixture = await startCaFixture();
  const path = join(fixture.caDir, 'gatehouse.yaml');
  config = loadCaConfig(path, {});
  configYaml = YAML.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
});

after(async () => {
  await fixture?.close();
});

/** What the code does, for each row of the table, in the row's unit. */
async function measured(): Promise<Record<string, number>> {
  const backdate = config.limits.backdate;
  const serverCert = (await fixture.store.listCerts({ role: 'ca-server' }))[0]!;
  const intermediateCrl = (await loadPublishedCrl(fixture.store, 'intermediate'))!;
  const rootCrl = (await loadPublishedCrl(fixture.store, 'root'))!;
  const { record: token } = await fixture.server.authority.createToken({ role: 'web' }, { actor: 'test' });
  const withExtraRole = parseCaConfig(
    YAML.stringify({ ...configYaml, roles: { ...(configYaml.roles as object), extra: { profile: 'client' } } }),
    'test',
    {},
  );
  const gateway = parseGatewayConfig(
    {
      listen: '127.0.0.1:9443',
      tls: { cert: 'c.pem', key: 'k.pem', clientCa: 'ca.pem' },
      routes: [{ upstreams: ['http://127.0.0.1:9000'] }],
    },
    'test',
    '/',
    {},
  );
  return {
    'root CA certificate': lifetimeOf(readFileSync(join(fixture.caDir, 'root.pem'), 'utf8'), backdate),
    'issuing intermediate certificate': lifetimeOf(
      readFileSync(join(fixture.caDir, 'intermediate.pem'), 'utf8'),
      backdate,
    ),
    'admin identity (`DIR/admin`, role `admin`)': lifetimeOf(
      readFileSync(join(fixture.adminDir, 'cert.pem'), 'utf8'),
      backdate,
    ),
    'leaf certificate, role `web`': config.roles.web!.lifetime,
    'leaf certificate, role `gateway`': config.roles.gateway!.lifetime,
    'leaf certificate, a role added without `lifetime`': withExtraRole.roles.extra!.lifetime,
    "the CA's own HTTPS certificate (role `ca-server`)": lifetimeOf(serverCert.certPem, backdate),
    "backdate of every certificate's notBefore": backdate,
    'intermediate CRL (`/crl`), nextUpdate − thisUpdate':
      intermediateCrl.nextUpdate.getTime() - intermediateCrl.thisUpdate.getTime(),
    'intermediate CRL re-signed before its nextUpdate': crlRenewBeforeMs(config, 'intermediate'),
    'root CRL (`/crl/root`), nextUpdate − thisUpdate': rootCrl.nextUpdate.getTime() - rootCrl.thisUpdate.getTime(),
    'root CRL re-signed before its nextUpdate': crlRenewBeforeMs(config, 'root'),
    'join token': token.expiresAt.getTime() - token.createdAt.getTime(),
    'join token, longest allowed': config.tokens.maxTtl,
    'retry of a renewal whose answer was lost': config.renewal.retryGrace,
    "agent's check of its certificate against `/crl`": DEFAULT_REVOCATION_CHECK_INTERVAL_MS,
    'gateway CRL refresh': gateway.revocation.refreshInterval,
    "gateway grace past a CRL's nextUpdate": gateway.revocation.grace,
    'demo certificates (`gatehouse demo`, `npm start`)': parseDurationMs(
      /\(default (\S+)\)/.exec(commandOption(['demo'], 'lifetime'))![1]!,
    )!,
  };
}

function commandOption(path: string[], option: string): string {
  const command = COMMANDS.find((c) => c.path.join(' ') === path.join(' '));
  assert.ok(command, `gatehouse ${path.join(' ')} exists`);
  const spec = command.options[option];
  assert.ok(spec, `gatehouse ${path.join(' ')} has --${option}`);
  return spec.description;
}

/** Sets a dotted key (`roles.web.lifetime`) in a copy of a config object. */
function withKey(base: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(base);
  const parts = key.split('.');
  let at: Record<string, unknown> = copy;
  for (const part of parts.slice(0, -1)) at = (at[part] ??= {}) as Record<string, unknown>;
  at[parts.at(-1)!] = value;
  return copy;
}

/** A config key's range, checked at both ends and just outside them with the schema that reads it. */
function assertRange(key: string, min: number, max: number, gatewayKey: boolean): void {
  const gatewayBase = {
    listen: '127.0.0.1:9443',
    tls: { cert: 'c.pem', key: 'k.pem', clientCa: 'ca.pem' },
    routes: [{ upstreams: ['http://127.0.0.1:9000'] }],
  };
  const concrete = key.replace('<role>', 'web');
  // crl.renewBefore must stay below crl.lifetime: each end of one is tried with room in the other.
  const companion = (doc: Record<string, unknown>) =>
    concrete === 'crl.renewBefore'
      ? withKey(doc, 'crl.lifetime', '30d')
      : concrete === 'crl.lifetime'
        ? withKey(doc, 'crl.renewBefore', '30s')
        : doc;
  const parse = (ms: number) => {
    const value = `${ms}ms`;
    if (gatewayKey) return parseGatewayConfig(withKey(gatewayBase, concrete, value), 'test', '/', {});
    return parseCaConfig(YAML.stringify(companion(withKey(configYaml, concrete, value))), 'test', {});
  };
  for (const ok of [min, max]) assert.doesNotThrow(() => parse(ok), `${key} accepts ${ok} ms`);
  for (const bad of [min - 1, max + 1])
    if (bad >= 0) assert.throws(() => parse(bad), /outside/, `${key} refuses ${bad} ms`);
}

test('lifetimes-doc-table-has-a-row-for-every-lifetime-and-no-other', async () => {
  assert.deepEqual([...lifetimeRows().keys()].sort(), [...Object.keys(await measured()), 'agent renewal point'].sort());
});

test('lifetimes-doc-every-default-is-the-code-s', async () => {
  const rows = lifetimeRows();
  const values = await measured();
  for (const [what, ms] of Object.entries(values)) {
    const row = rows.get(what);
    assert.ok(row, `a row for ${what}`);
    assert.equal(durationOf(row.value), ms, `${what}: the table says ${row.value}, the code does ${ms} ms`);
  }
  // Years as written next to the days.
  assert.match(
    rows.get('root CA certificate')!.value,
    new RegExp(`\\(${values['root CA certificate']! / (365 * DAY)} years\\)`),
  );
  assert.match(
    rows.get('issuing intermediate certificate')!.value,
    new RegExp(`\\(${values['issuing intermediate certificate']! / (365 * DAY)} years\\)`),
  );
  // The root CRL is re-signed at a third of its lifetime left, as the row says.
  assert.equal(crlRenewBeforeMs(config, 'root'), config.crl.rootLifetime / 3);
});

test('lifetimes-doc-renewal-point-is-the-agent-s', () => {
  const row = lifetimeRows().get('agent renewal point')!;
  const [center, spread] = [...row.value.matchAll(/`(\d+)\/(\d+)`/g)].map((m) => Number(m[1]) / Number(m[2]));
  assert.ok(center !== undefined && spread !== undefined, row.value);
  const at = (random: number) => renewalTime(new Date(0), new Date(1e12), () => random).getTime() / 1e12;
  assert.ok(Math.abs(at(0.5) - center) < 1e-9, `the centre is ${center}`);
  assert.ok(Math.abs(at(0) - (center - spread)) < 1e-9 && Math.abs(at(1) - (center + spread)) < 1e-9, `± ${spread}`);
  const [low, high] = [...row.value.matchAll(/(\d+) %/g)].map((m) => Number(m[1]));
  assert.equal(low, Math.round(at(0) * 100));
  assert.equal(high, Math.round(at(1) * 100));
});

test('lifetimes-doc-every-config-key-flag-and-range-exists', () => {
  let ranges = 0;
  for (const [what, row] of lifetimeRows()) {
    const key = /`((?:roles\.<role>|roles\.[a-z]+|[a-z]+)\.[A-Za-z]+)`(?: in the gateway config)? \((\S+)–(\S+)\)/.exec(
      row.change,
    );
    if (key) {
      ranges++;
      assertRange(
        key[1]!,
        parseDurationMs(key[2]!)!,
        parseDurationMs(key[3]!)!,
        row.change.includes('in the gateway config'),
      );
    } else {
      assert.match(
        row.change,
        /^not configurable|^a third of|^`gatehouse demo --lifetime`/,
        `${what}: a config key with its range, or why there is none`,
      );
    }
    // Commands and flags named in the table exist.
    for (const m of row.change.matchAll(/`(?:gatehouse )?((?:ca|token|agent|demo)(?: [a-z-]+)?) (--[a-z-]+)/g)) {
      const words = m[1]!.split(' ');
      commandOption(words, m[2]!.slice(2));
    }
  }
  assert.ok(ranges >= 12, `${ranges} ranges checked`);
});
