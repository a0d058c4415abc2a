/**
 * The request-smuggling rig: the real `gatehouse gateway` CLI (one process, `--workers 1`, so a
 * crash is seen as one) in front of a recording upstream, a PKI made by openssl, a policy that
 * allows little, and the invariant every case is checked against:
 *
 *   the upstream parsed exactly the requests the gateway admitted; each carries the gateway's
 *   identity headers, once; no path the policy denies and no attacker-written identity value
 *   ever reaches the app; and the gateway still serves an allowed request afterwards.
 *
 * Each case is partitioned by a sentinel: after the case's own connection is done, a second
 * client (bob) sends an allowed request on a new connection; once the app and the access log
 * both show it, everything before it belongs to the case.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as connectH2, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { makeCa, makeLeaf, type OpensslCa, type OpensslLeaf } from './openssl-pki.js';
import { startGatewayProcess, type GatewayProcess, type LogLine } from './gateway-process.js';
import {
  startRecordingUpstream,
  waitUntil,
  type RecordedRequest,
  type RecordingUpstream,
  type UpstreamKind,
} from './recording-upstream.js';
import { finalResponses, rawExchange, type RawExchange, type Step } from './raw-http-client.js';

export type ClientName = 'alice' | 'carol' | 'none';

/** What may reach the app for one case: method, target and (when given) the exact body. */
export interface Seen {
  method: string;
  target: string;
  body?: string;
}

export interface Expect {
  /** Allowed statuses of the final responses, in order; 0 in a list means "no response here is fine". */
  statuses?: number[][];
  /** The gateway must close the connection (ambiguous framing: RFC 9112 §6.1, §6.3, §11.2). */
  closes?: boolean;
  /** The app's requests must equal one of these sequences (refused, or forwarded correctly framed). */
  upstream?: Seen[][];
  /**
   * A body the gateway streams may turn out invalid after the head was forwarded: then the app
   * sees an aborted request (head, incomplete body). Such requests are left out of `upstream`.
   */
  allowAborted?: boolean;
}

export interface DesyncCase {
  name: string;
  /** One write (string/Buffer) or several steps (writes and waits). */
  bytes: string | Buffer | Step[];
  client?: ClientName;
  /** The answers are to HEAD: no body whatever Content-Length says. */
  bodiless?: boolean;
  expect: Expect;
  /** Why the expectation is what it is, or why it is loose. */
  note?: string;
}

/** Policy: alice may GET (and so HEAD) /hello and POST /submit; carol may DELETE/OPTIONS/TRACE /hello; bob (the sentinel) GET /hello. */
const POLICY = {
  version: 1,
  name: 'desync',
  rules: [
    { id: 'alice-hello', effect: 'allow', methods: ['GET'], paths: ['/hello'], identities: ['alice'] },
    { id: 'alice-submit', effect: 'allow', methods: ['POST'], paths: ['/submit'], identities: ['alice'] },
    {
      id: 'carol-hello',
      effect: 'allow',
      methods: ['DELETE', 'OPTIONS', 'TRACE'],
      paths: ['/hello'],
      identities: ['carol'],
    },
    { id: 'sentinel', effect: 'allow', methods: ['GET'], paths: ['/hello'], identities: ['bob'] },
  ],
};

/** What the policy lets each client do: the only (method, path) pairs that may ever reach the app. */
export function policyAllows(name: string, method: string, path: string): boolean {
  const hello = path === '/hello' || path === '/hello/';
  const submit = path === '/submit' || path === '/submit/';
  if (name === 'alice') return ((method === 'GET' || method === 'HEAD') && hello) || (method === 'POST' && submit);
  if (name === 'carol') return ['DELETE', 'OPTIONS', 'TRACE'].includes(method) && hello;
  if (name === 'bob') return (method === 'GET' || method === 'HEAD') && hello;
  return false;
}

export interface Pki {
  ca: OpensslCa;
  caPem: string;
  server: OpensslLeaf;
  clients: Record<'alice' | 'bob' | 'carol', { leaf: OpensslLeaf; cert: string; key: string }>;
  policyFile: string;
}

export async function makePki(dir: string): Promise<Pki> {
  const ca = await makeCa(dir, 'Desync Root');
  const [server, alice, bob, carol] = await Promise.all([
    makeLeaf(ca, { file: 'server', cn: 'localhost', eku: 'serverAuth', san: 'DNS:localhost,IP:127.0.0.1' }),
    makeLeaf(ca, { file: 'alice', subject: '/O=acme/OU=web/CN=alice' }),
    makeLeaf(ca, { file: 'bob', subject: '/O=acme/OU=web/CN=bob' }),
    makeLeaf(ca, { file: 'carol', subject: '/O=acme/OU=ops/CN=carol' }),
  ]);
  const policyFile = join(dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(POLICY));
  const client = (leaf: OpensslLeaf) => ({
    leaf,
    cert: readFileSync(leaf.certPath, 'utf8'),
    key: readFileSync(leaf.keyPath, 'utf8'),
  });
  return {
    ca,
    caPem: ca.pem,
    server,
    clients: { alice: client(alice), bob: client(bob), carol: client(carol) },
    policyFile,
  };
}

export interface CaseOutcome {
  exchange: RawExchange | null;
  /** For HTTP/2 cases: what the client saw. */
  h2?: { status: number | null; error: string | null };
  upstream: RecordedRequest[];
  gatewayLines: LogLine[];
  /** Set when the sentinel did not get through: the gateway is down or stuck. */
  gatewayDown: string | null;
}

export class DesyncRig {
  upstream!: RecordingUpstream;
  gateway!: GatewayProcess;
  /** Inputs after which the gateway process was found dead, with its exit and last stderr. */
  readonly crashes: Array<{ name: string; exit: string; stderr: string }> = [];
  private sentinelCounter = 0;
  /**
   * Where the next case's share of the access log and of the app's records starts: where the last
   * case's ended, not where the next one begins. Under load a pipelined request can be admitted
   * and reach the app after its case's sentinel; its log line and its app record then both fall
   * to the next case, which pairs them, instead of one being dropped and the other unexplained.
   */
  private cursor: { gateway: GatewayProcess; log: number; upstream: number } | null = null;

  constructor(
    readonly kind: UpstreamKind,
    readonly pki: Pki,
  ) {}

  async start(): Promise<void> {
    this.upstream = await startRecordingUpstream(this.kind);
    await this.startGateway();
  }

  async stop(): Promise<void> {
    await this.gateway?.stop();
    await this.upstream?.close();
  }

  private async startGateway(): Promise<void> {
    this.gateway = await startGatewayProcess({
      cert: this.pki.server.certPath,
      key: this.pki.server.keyPath,
      clientCa: this.pki.ca.certPath,
      upstream: this.upstream.url,
      policy: this.pki.policyFile,
      extraArgs: ['--workers', '1'],
    });
  }

  /** A dead gateway is recorded as a crash (with the input that preceded it) and restarted. */
  private async restartIfDead(name: string, graceMs = 0): Promise<boolean> {
    const child = this.gateway.child;
    const dead = () => (child.exitCode !== null || child.signalCode !== null ? true : undefined);
    // A process that just crashed may not have reported its exit yet: give it `graceMs`.
    if (graceMs > 0) await waitUntil(dead, graceMs, 'the gateway to exit').catch(() => undefined);
    if (!dead()) return false;
    this.crashes.push({
      name,
      exit: String(child.exitCode ?? child.signalCode),
      stderr: this.gateway.stderr().slice(-3000),
    });
    await this.startGateway();
    return true;
  }

  clientCredentials(client: ClientName): { cert?: string; key?: string } {
    return client === 'none' ? {} : { cert: this.pki.clients[client].cert, key: this.pki.clients[client].key };
  }

  async runCase(c: DesyncCase, options: { idleMs?: number } = {}): Promise<CaseOutcome> {
    return this.partitioned(c.name, async () => {
      const steps = typeof c.bytes === 'string' || Buffer.isBuffer(c.bytes) ? [c.bytes] : c.bytes;
      return rawExchange({
        port: this.gateway.port,
        ca: this.pki.caPem,
        ...this.clientCredentials(c.client ?? 'alice'),
        steps,
        bodiless: c.bodiless,
        idleMs: options.idleMs ?? 200,
        minResponses: minResponsesOf(c.expect),
        maxMs: 4000,
      });
    });
  }

  /** HTTP/2 through node:http2: `headers` as given, then `body` in DATA frames. */
  async runH2(name: string, headers: OutgoingHttpHeaders, body: string): Promise<CaseOutcome> {
    let h2: CaseOutcome['h2'] = { status: null, error: null };
    const outcome = await this.partitioned(name, async () => {
      h2 = await h2Request(this.gateway.port, this.pki, headers, body);
      return null;
    });
    return { ...outcome, h2 };
  }

  private async partitioned(name: string, exchange: () => Promise<RawExchange | null>): Promise<CaseOutcome> {
    await this.restartIfDead(`(before ${name})`);
    const carried = this.cursor?.gateway === this.gateway ? this.cursor : null;
    const upMark = carried?.upstream ?? this.upstream.requests().length;
    const logMark = carried?.log ?? this.gateway.logs().length;
    const result = await exchange();
    const sentinel = await this.sentinel();
    let gatewayDown: string | null = null;
    if (!sentinel.ok) {
      gatewayDown = sentinel.why;
      if (await this.restartIfDead(name, 2000))
        gatewayDown += ` (the gateway process died: exit ${this.crashes.at(-1)!.exit})`;
    }
    const records = this.upstream.requests();
    const upstream = records.slice(upMark).filter((r) => !r.target.startsWith('/hello?sentinel='));
    const lines = sentinel.ok
      ? this.gateway.logs().slice(logMark, sentinel.logIndex)
      : this.gateway.logs().slice(logMark);
    this.cursor = sentinel.ok ? { gateway: this.gateway, log: sentinel.logIndex + 1, upstream: records.length } : null;
    return { exchange: result, upstream, gatewayLines: lines.filter((l) => l.msg === 'gateway.request'), gatewayDown };
  }

  /** An allowed request on a new connection, by bob; its app record and log line mark the case's end. */
  private async sentinel(): Promise<{ ok: true; logIndex: number } | { ok: false; why: string }> {
    const target = `/hello?sentinel=${++this.sentinelCounter}`;
    const gateway = this.gateway;
    const logMark = gateway.logs().length;
    try {
      const x = await rawExchange({
        port: gateway.port,
        ca: this.pki.caPem,
        cert: this.pki.clients.bob.cert,
        key: this.pki.clients.bob.key,
        steps: [`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`],
        minResponses: 1,
        maxMs: 5000,
      });
      const status = finalResponses(x)[0]?.status;
      if (status !== 200)
        return {
          ok: false,
          why: `the next allowed request on a new connection got ${status ?? `no answer (${x.endedBy}, ${x.error ?? 'no error'})`}`,
        };
      await this.upstream.waitFor((r) => r.target === target, 3000);
      const index = await waitUntil(
        () => {
          const i = gateway
            .logs()
            .findIndex((l, k) => k >= logMark && l.msg === 'gateway.request' && l.identity === 'bob');
          return i >= 0 ? i : undefined;
        },
        3000,
        'the sentinel access-log line',
      );
      return { ok: true, logIndex: index };
    } catch (err) {
      return { ok: false, why: `the next allowed request on a new connection failed: ${(err as Error).message}` };
    }
  }
}

function minResponsesOf(expect: Expect): number {
  return (expect.statuses ?? []).filter((allowed) => !allowed.includes(0)).length;
}

async function h2Request(
  port: number,
  pki: Pki,
  headers: OutgoingHttpHeaders,
  body: string,
): Promise<{ status: number | null; error: string | null }> {
  const session = connectH2(`https://localhost:${port}`, {
    ca: pki.caPem,
    cert: pki.clients.alice.cert,
    key: pki.clients.alice.key,
    servername: 'localhost',
  });
  session.on('error', () => undefined);
  try {
    return await new Promise((resolve) => {
      let status: number | null = null;
      let stream: ClientHttp2Stream;
      try {
        stream = session.request(headers, { endStream: body === '' });
      } catch (err) {
        resolve({
          status: null,
          error: `client refused to send: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        });
        return;
      }
      const timer = setTimeout(() => {
        stream.close();
        resolve({ status, error: 'no end within 4 s' });
      }, 4000);
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.on('data', () => undefined);
      stream.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve({ status, error: err.code ?? err.message });
      });
      stream.on('close', () => {
        clearTimeout(timer);
        resolve({ status, error: stream.rstCode ? `RST_STREAM ${stream.rstCode}` : null });
      });
      if (body !== '') stream.end(body);
    });
  } finally {
    session.destroy();
  }
}

// ---------------------------------------------------------------- the invariant

const IDENTITY_NAME = /^(x[-_]client[-_]|ssl[-_]client[-_]|x[-_]forwarded[-_](tls[-_])?client|client[-_]cert)/i;

const values = (r: RecordedRequest, name: string) =>
  r.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
const pathOf = (target: string) => target.split('?')[0]!;
/** One line per app request; the gateway's certificate and fingerprint headers are left out (long, and checked elsewhere). */
const describeRequest = (r: RecordedRequest) => {
  const shown = r.headers.filter(
    ([n]) =>
      !/^(client-cert|client-cert-chain|x-client-fingerprint|x-client-subject|x-client-serial|x-forwarded-for|x-real-ip|x-forwarded-proto)$/i.test(
        n,
      ),
  );
  return `${r.method} ${JSON.stringify(r.target)} ${r.version}${r.complete ? '' : ' (incomplete)'} body=${JSON.stringify(r.body.toString('latin1').slice(0, 80))} headers=${JSON.stringify(shown.map(([n, v]) => `${n}: ${v.slice(0, 60)}`))}`;
};

/** Invariant violations (empty when the case is safe), each a readable sentence. */
export function invariantViolations(outcome: CaseOutcome, client: ClientName): string[] {
  const v: string[] = [];
  if (outcome.gatewayDown) v.push(`gateway not serving after the case: ${outcome.gatewayDown}`);
  for (const r of outcome.upstream) v.push(...requestViolations(r, client));
  v.push(...admissionMismatches(outcome.upstream, outcome.gatewayLines));
  return v;
}

function requestViolations(r: RecordedRequest, client: ClientName): string[] {
  const v: string[] = [];
  const what = `app parsed ${describeRequest(r)}`;
  if (/smuggled/i.test(r.target) || r.headers.some(([, value]) => /smuggled/i.test(value)))
    v.push(`${what}: a smuggled request reached the app`);
  const names = values(r, 'x-client-name');
  if (!policyAllows(names[0] ?? '', r.method, pathOf(r.target)))
    v.push(`${what}: not allowed by the policy for ${JSON.stringify(names)}`);
  if (client !== 'none' && (names.length !== 1 || names[0] !== client))
    v.push(`${what}: X-Client-Name should be exactly [${client}], is ${JSON.stringify(names)}`);
  const verify = values(r, 'x-client-verify');
  if (verify.length !== 1 || verify[0] !== 'SUCCESS')
    v.push(`${what}: X-Client-Verify should be exactly [SUCCESS], is ${JSON.stringify(verify)}`);
  const identity = [...r.headers, ...r.trailers].filter(([n]) => IDENTITY_NAME.test(n.trim()));
  const forged = identity.filter(([, value]) => /FORGED/i.test(value));
  if (forged.length) v.push(`${what}: attacker-written identity headers reached the app: ${JSON.stringify(forged)}`);
  const seen = new Set<string>();
  for (const [n] of r.headers.filter(([n]) => IDENTITY_NAME.test(n.trim()))) {
    const key = n.trim().toLowerCase().replace(/_/g, '-');
    if (seen.has(key)) v.push(`${what}: identity header ${n} twice`);
    seen.add(key);
  }
  // RFC 9112 §3.2: more than one Host is a 400; an app must never get to choose between two.
  if (values(r, 'host').length > 1) v.push(`${what}: more than one Host header`);
  if (r.headers.some(([n, value]) => /[\r\n\0]/.test(n + value)))
    v.push(`${what}: CR, LF or NUL inside a forwarded header`);
  return v;
}

/**
 * Pairs the app's requests with the gateway's admissions (access-log lines with decision
 * "allowed", or "failed" after reaching for the upstream) by method and path. An app request
 * with no admission was smuggled; an admission answered by the app (status < 500) with no app
 * request means the app's answer belonged to some other request.
 */
function admissionMismatches(upstream: RecordedRequest[], lines: LogLine[]): string[] {
  const admitted = lines.filter(
    (l) => l.decision === 'allowed' || (l.decision === 'failed' && typeof l.path === 'string'),
  );
  const used = new Set<LogLine>();
  const v: string[] = [];
  for (const r of upstream) {
    const line = admitted.find((l) => !used.has(l) && l.method === r.method && l.path === pathOf(r.target));
    if (line) used.add(line);
    else if (r.complete)
      v.push(
        `app parsed ${describeRequest(r)} but the gateway admitted no such request (access log: ${JSON.stringify(lines.map((l) => `${l.decision} ${l.method ?? ''} ${l.path ?? ''} ${l.status}`))})`,
      );
  }
  for (const l of admitted) {
    // A request cut short (`aborted`) may have ended before its head reached the app.
    if (!used.has(l) && l.decision === 'allowed' && l.aborted !== true && Number(l.status) < 500)
      v.push(`gateway admitted ${l.method} ${l.path} (status ${l.status}) but the app never parsed it`);
  }
  return v;
}

/** The case's own expectations (statuses, closing, the exact upstream list), as violations. */
export function expectationViolations(c: DesyncCase, outcome: CaseOutcome): string[] {
  const v: string[] = [];
  const x = outcome.exchange;
  if (x && c.expect.statuses) {
    const got = finalResponses(x).map((r) => r.status);
    c.expect.statuses.forEach((allowed, i) => {
      const status = got[i] ?? 0;
      if (!allowed.includes(status))
        v.push(
          `response ${i + 1}: ${status ? `status ${status}` : `none (${x.endedBy === 'close' ? 'connection closed without a status' : x.endedBy})`}, expected one of ${allowed.join('/')} (all: ${got.join(', ') || 'none'})`,
        );
    });
    if (got.length > c.expect.statuses.length)
      v.push(`${got.length} responses, expected at most ${c.expect.statuses.length}: ${got.join(', ')}`);
  }
  if (x && c.expect.closes && x.endedBy !== 'close')
    v.push(`the gateway kept the connection open (${x.endedBy}) after an ambiguously framed request`);
  if (c.expect.upstream) {
    const seen = c.expect.allowAborted ? outcome.upstream.filter((r) => r.complete) : outcome.upstream;
    // Pipelined requests may travel on different pooled upstream connections, so the app can
    // parse them in any order: the expectation is the set of requests, not their sequence.
    const matches = c.expect.upstream.some((alt) => alt.length === seen.length && matchesInAnyOrder(alt, seen));
    if (!matches) {
      v.push(
        `the app parsed [${outcome.upstream.map(describeRequest).join('; ')}], expected one of: ${c.expect.upstream.map((alt) => `[${alt.map((s) => `${s.method} ${s.target}${s.body !== undefined ? ` body=${JSON.stringify(s.body.slice(0, 60))}` : ''}`).join(', ')}]`).join(' | ')}`,
      );
    }
  }
  return v;
}

function matchesInAnyOrder(expected: readonly Seen[], seen: readonly RecordedRequest[]): boolean {
  const left = [...seen];
  return expected.every((s) => {
    const i = left.findIndex((r) => seenMatches(s, r));
    if (i < 0) return false;
    left.splice(i, 1);
    return true;
  });
}

function seenMatches(s: Seen, r: RecordedRequest): boolean {
  if (s.method !== r.method || s.target !== r.target) return false;
  return s.body === undefined || (r.complete && r.body.toString('latin1') === s.body);
}

export function describeOutcome(outcome: CaseOutcome): string {
  const x = outcome.exchange;
  const client = x
    ? `client got ${JSON.stringify(x.raw.toString('latin1').slice(0, 600))} (${x.endedBy}${x.error ? `, ${x.error}` : ''})`
    : `h2: ${JSON.stringify(outcome.h2)}`;
  return `${client}\napp parsed: ${outcome.upstream.map(describeRequest).join('\n  ') || 'nothing'}\ngateway log: ${JSON.stringify(outcome.gatewayLines.map((l) => `${l.decision} ${l.method ?? ''} ${l.path ?? ''} ${l.status} ${l.reason ?? ''}`))}`;
}
