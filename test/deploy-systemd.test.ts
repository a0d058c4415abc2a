/**
 * The systemd units of docs/deploy, checked by systemd itself: `systemd-analyze verify` (every
 * unit and drop-in, as systemd would load it) and `systemd-analyze security --offline` (the
 * exposure of the three long-running services must stay at or below 3.0, "OK"). systemd-analyze
 * is a required tool (scripts/run-tests.mjs); neither command needs systemd running.
 *
 * verify also checks that each Exec*= command exists. The units name the installed
 * /usr/local/bin/gatehouse and /usr/local/bin/gatehouse-crl-refresh, which a test machine lacks,
 * so verify runs on copies in a temporary directory where only those two paths are changed, to
 * executable stubs next to them; every other line, drop-ins included, is verified as shipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DEPLOY = 'docs/deploy';
/** The long-running services, each held to `systemd-analyze security` ≤ 3.0. */
const SERVICES = ['gatehouse-agent.service', 'gatehouse-ca.service', 'gatehouse-gateway.service'];
const MAX_EXPOSURE = 3.0;
const INSTALLED = ['/usr/local/bin/gatehouse-crl-refresh', '/usr/local/bin/gatehouse'];

/** docs/deploy/gatehouse-agent.service before it was hardened: rated 9.0 UNSAFE. The control. */
const UNSAFE_AGENT_UNIT = `[Unit]
Description=Gatehouse agent: keep an identity fresh and run its renewal hook
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
Environment=GATEHOUSE_AGENT_DIR=/etc/gatehouse/gateway
Environment=GATEHOUSE_ON_RENEW=
EnvironmentFile=-/etc/default/gatehouse-agent
ExecStart=/usr/local/bin/gatehouse agent run --on-renew \${GATEHOUSE_ON_RENEW}
Restart=on-failure
RestartSec=30s
RestartPreventExitStatus=75
User=root
UMask=0077
NoNewPrivileges=yes
PrivateTmp=yes
ProtectHome=yes

[Install]
WantedBy=multi-user.target
`;

function analyze(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('systemd-analyze', args, {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_PAGER: 'cat', SYSTEMD_COLORS: '0' },
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const unitFiles = () =>
  readdirSync(DEPLOY)
    .filter((f) => /\.(service|timer|path)$/.test(f))
    .sort();

/** Copies docs/deploy's units and drop-in folders to a temporary directory, installed paths pointing at stubs. */
function stagedUnits(): { dir: string; files: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-units-'));
  const stubs = new Map(INSTALLED.map((path) => [path, join(dir, 'bin', path.split('/').pop()!)]));
  cpSync(DEPLOY, dir, {
    recursive: true,
    filter: (src) => statSync(src).isDirectory() || /\.(service|timer|path|conf)$/.test(src),
  });
  mkdirSync(join(dir, 'bin'));
  for (const stub of stubs.values()) {
    writeFileSync(stub, '#!/bin/sh\nexit 0\n');
    chmodSync(stub, 0o755);
  }
  const files = unitFiles().map((f) => join(dir, f));
  for (const file of files) {
    let text = readFileSync(file, 'utf8');
    for (const [path, stub] of stubs)
      text = text.replace(new RegExp(`${path.replace(/[/.]/g, '\\$&')}(?=\\s|$)`, 'gm'), stub);
    writeFileSync(file, text);
  }
  return { dir, files };
}

/** The overall exposure `systemd-analyze security --offline` gives a unit file, e.g. 1.1. */
function exposure(unitPath: string): { level: number; line: string; thresholdStatus: number | null } {
  // --threshold counts on the 0–100 scale the table's 0.0–10.0 is shown in: 30 is 3.0.
  const r = analyze(['security', '--offline=true', `--threshold=${MAX_EXPOSURE * 10}`, '--no-pager', unitPath]);
  const line = /^→ Overall exposure level for .+$/m.exec(r.stdout)?.[0];
  assert.ok(line, `no overall exposure level for ${unitPath}:\n${r.stdout}\n${r.stderr}`);
  return { level: Number(/: (\d+\.\d) /.exec(line)![1]), line, thresholdStatus: r.status };
}

test('deploy-systemd-analyze-verify-accepts-every-unit-and-drop-in', () => {
  const { dir, files } = stagedUnits();
  try {
    assert.ok(
      files.length >= 7,
      `expected the agent, reload, CA, gateway and CRL refresh units, found ${files.map((f) => f.split('/').pop()).join(', ')}`,
    );
    const r = analyze(['verify', '--man=no', '--no-pager', ...files]);
    // Unknown keys and bad values are warnings (exit 0), so the output must be empty too.
    assert.equal(r.status, 0, `systemd-analyze verify failed:\n${r.stdout}${r.stderr}`);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'systemd-analyze verify has remarks');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deploy-systemd-analyze-verify-would-catch-a-mistake', () => {
  // The same check on a copy with a misspelt value and an unknown key: it must speak up.
  const { dir } = stagedUnits();
  try {
    const file = join(dir, 'gatehouse-gateway.service');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('ProtectSystem=strict', 'ProtectSystem=strcit\nProtectSytem=strict'),
    );
    const r = analyze(['verify', '--man=no', '--no-pager', file]);
    assert.match(`${r.stdout}${r.stderr}`, /gatehouse-gateway.service:\d+: .*protect system.*strcit/i);
    assert.match(`${r.stdout}${r.stderr}`, /Unknown key.*ProtectSytem/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deploy-systemd-services-expose-at-most-3.0-in-systemd-analyze-security', () => {
  for (const service of SERVICES) {
    const { level, line, thresholdStatus } = exposure(join(DEPLOY, service));
    assert.ok(level <= MAX_EXPOSURE, `${line} (at most ${MAX_EXPOSURE.toFixed(1)} allowed)`);
    assert.match(line, / OK /, line);
    assert.equal(thresholdStatus, 0, `${service}: systemd-analyze security --threshold=${MAX_EXPOSURE * 10} failed`);
  }
});

test('deploy-systemd-security-check-fails-the-unhardened-agent-unit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-unsafe-'));
  try {
    const file = join(dir, 'gatehouse-agent.service');
    writeFileSync(file, UNSAFE_AGENT_UNIT);
    const { level, line, thresholdStatus } = exposure(file);
    assert.ok(level > MAX_EXPOSURE, `the control must fail the check: ${line}`);
    assert.equal(level, 9.0, line);
    assert.notEqual(thresholdStatus, 0, '--threshold must fail it too');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Settings of a unit (the last value of each key wins, as in systemd; lists keep every value). */
function settings(file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(join(DEPLOY, file), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

test('deploy-systemd-services-keep-what-node-and-the-cli-need', () => {
  for (const service of SERVICES) {
    const s = settings(service);
    const last = (key: string) => s.get(key)?.at(-1);
    assert.ok(last('User') && last('User') !== 'root', `${service}: a non-root User=`);
    assert.equal(last('ProtectSystem'), 'strict', service);
    assert.equal(last('NoNewPrivileges'), 'yes', service);
    assert.equal(last('CapabilityBoundingSet'), '', `${service}: no capabilities`);
    // V8's JIT needs writable+executable memory: node aborts at start under MemoryDenyWriteExecute=yes.
    assert.notEqual(last('MemoryDenyWriteExecute'), 'yes', service);
    // And systemd 252's @system-service lacks the pkey_* calls V8 makes: SIGSYS without them.
    assert.ok(
      s.get('SystemCallFilter')?.some((v) => v.split(/\s+/).includes('pkey_alloc')),
      `${service}: SystemCallFilter= allows pkey_alloc`,
    );
    assert.equal(last('SystemCallErrorNumber'), 'EPERM', service);
    assert.equal(last('Restart'), 'on-failure', service);
  }
  assert.equal(
    settings('gatehouse-agent.service').get('RestartPreventExitStatus')?.at(-1),
    '75',
    'exit 75 (enroll again) is not restarted',
  );
  assert.equal(
    settings('gatehouse-gateway.service').get('ExecReload')?.at(-1),
    '/bin/kill -HUP $MAINPID',
    'the gateway reloads on SIGHUP',
  );
  const ca = settings('gatehouse-ca.service');
  assert.equal(ca.get('StateDirectory')?.at(-1), 'gatehouse/ca');
  assert.equal(ca.get('StateDirectoryMode')?.at(-1), '0700', 'the CLI refuses a CA directory others can read');
  assert.match(ca.get('ExecStart')!.at(-1)!, /--dir \/var\/lib\/gatehouse\/ca$/);
  // The passphrase drop-in hands the credential to the variable the CA reads.
  const dropIn = readFileSync(join(DEPLOY, 'gatehouse-ca.service.d/passphrase.conf'), 'utf8');
  assert.match(dropIn, /^LoadCredential=passphrase:\/etc\/gatehouse\/ca-passphrase$/m);
  assert.match(dropIn, /^Environment=GATEHOUSE_PASSPHRASE_FILE=%d\/passphrase$/m);
  // The agent writes only its identity directory, which the .path unit watches.
  const agent = settings('gatehouse-agent.service');
  assert.deepEqual(agent.get('ReadWritePaths'), ['/etc/gatehouse/gateway']);
  assert.ok(agent.get('Environment')?.includes('GATEHOUSE_AGENT_DIR=/etc/gatehouse/gateway'));
  assert.deepEqual(settings('gatehouse-agent-reload.path').get('PathChanged'), ['/etc/gatehouse/gateway/cert.pem']);
  // Its secrets live on the tmpfs systemd gives it, never on a disk (issue 13).
  assert.equal(agent.get('RuntimeDirectory')?.at(-1), 'gatehouse-agent');
  assert.equal(agent.get('RuntimeDirectoryMode')?.at(-1), '0700');
  assert.match(agent.get('ExecStart')!.at(-1)!, / --secrets-dir \/run\/gatehouse-agent\/secrets /);
});
