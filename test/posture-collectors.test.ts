/**
 * Posture collectors against fixture trees (an old OS release, an sshd_config with root login on
 * and includes, a /proc/net/tcp with a telnet listener owned by a process, firewall
 * configurations, APT lists with pending upgrades) and once against this machine, where a socket
 * this test opens must be found with this process as its owner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { osReleaseCollector, parseOsRelease } from '../src/posture/collectors/os-release.js';
import { sshdPasswordCollector, sshdRootLoginCollector } from '../src/posture/collectors/sshd.js';
import { listeningSocketsCollector, readListeners } from '../src/posture/collectors/listening-sockets.js';
import { makeTempDir } from './helpers/tmp.js';
import { installedPackages } from '../src/posture/collectors/packages.js';
import { autoUpdatesCollector, timeSyncCollector } from '../src/posture/collectors/system.js';
import { identityFilesCollector } from '../src/posture/collectors/identity-files.js';
import { firewallCollector } from '../src/posture/collectors/firewall.js';
import { pendingUpgradesCollector } from '../src/posture/collectors/pending-upgrades.js';
import { writeTree } from './helpers/system-tree.js';

function tree(files: Record<string, string>, links: Record<string, string> = {}): { root: string; cleanup(): void } {
  const tmp = makeTempDir('gatehouse-posture-');
  writeTree(tmp.dir, files);
  for (const [path, target] of Object.entries(links)) {
    mkdirSync(dirname(join(tmp.dir, path)), { recursive: true });
    symlinkSync(target, join(tmp.dir, path));
  }
  return { root: tmp.dir, cleanup: tmp.cleanup };
}

const at = (iso: string) => new Date(iso);

test('posture-os-release-old-release-fails-current-passes-unknown-is-unknown', () => {
  const cases: Array<[string | null, string, string, RegExp]> = [
    [
      'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nID=debian\nVERSION_ID="10"\n',
      '2026-12-01',
      'fail',
      /Debian GNU\/Linux 10 \(buster\) no longer gets security updates \(support ended 2022-09-10\)/,
    ],
    [
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
      '2026-01-01',
      'pass',
      /gets security updates until 2026-06-10/,
    ],
    ["NAME='Ubuntu'\nID=ubuntu\nVERSION_ID='24.04'\n", '2026-12-01', 'pass', /until 2029-05-31/],
    ['ID=plan9\nVERSION_ID=4\n', '2026-12-01', 'unknown', /does not know when its security support ends/],
    [null, '2026-12-01', 'unknown', /no \/etc\/os-release/],
  ];
  for (const [text, now, verdict, reason] of cases) {
    const t = tree(text === null ? {} : { 'etc/os-release': text });
    try {
      const result = osReleaseCollector.collect({ root: t.root, now: at(now) });
      assert.equal(result.verdict, verdict, `${text}: ${result.reason}`);
      assert.match(result.reason, reason);
      assert.equal(result.id, 'os-supported');
    } finally {
      t.cleanup();
    }
  }
  assert.deepEqual(parseOsRelease('A="x \\"y\\""\n# comment\nB=z\nbad line\n'), { A: 'x "y"', B: 'z' });
});

test('posture-sshd-root-login-and-passwords-from-config-and-includes', () => {
  const now = at('2026-12-01');
  // Root login on, set in an included file, which comes before the main file's later setting (first wins).
  const t = tree({
    'etc/ssh/sshd_config':
      'Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n# PasswordAuthentication yes\nMatch User backup\n  PasswordAuthentication no\n',
    'etc/ssh/sshd_config.d/10-root.conf': 'PermitRootLogin yes\n',
    'etc/ssh/sshd_config.d/20-other.conf': 'X11Forwarding no\n',
  });
  try {
    const root = sshdRootLoginCollector.collect({ root: t.root, now });
    assert.equal(root.verdict, 'fail');
    assert.match(root.reason, /PermitRootLogin yes/);
    // PasswordAuthentication only in a Match block: the global default (yes) applies.
    const password = sshdPasswordCollector.collect({ root: t.root, now });
    assert.equal(password.verdict, 'fail');
    assert.match(password.reason, /PasswordAuthentication yes, the default/);
  } finally {
    t.cleanup();
  }
  const hardened = tree({
    'etc/ssh/sshd_config': 'Include sshd_config.d/*.conf\n',
    'etc/ssh/sshd_config.d/50-keys.conf': 'PasswordAuthentication = no\nPermitRootLogin prohibit-password\n',
  });
  try {
    assert.equal(
      sshdPasswordCollector.collect({ root: hardened.root, now }).verdict,
      'pass',
      'a relative Include is under /etc/ssh',
    );
    assert.equal(sshdRootLoginCollector.collect({ root: hardened.root, now }).verdict, 'pass');
  } finally {
    hardened.cleanup();
  }
  const none = tree({});
  try {
    assert.match(sshdRootLoginCollector.collect({ root: none.root, now }).reason, /no SSH server configuration/);
  } finally {
    none.cleanup();
  }
});

const TCP_HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const tcpLine = (n: number, local: string, state: string, inode: number) =>
  `   ${n}: ${local} 00000000:0000 ${state} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;

test('posture-listening-sockets-telnet-with-its-process-and-databases-beyond-loopback', () => {
  const now = at('2026-12-01');
  const t = tree(
    {
      // 0.0.0.0:23 LISTEN (telnet), 127.0.0.1:6379 LISTEN (redis on loopback), an ESTABLISHED one (01), ignored.
      'proc/net/tcp':
        TCP_HEADER +
        tcpLine(0, '00000000:0017', '0A', 4242) +
        tcpLine(1, '0100007F:18EB', '0A', 4343) +
        tcpLine(2, '0100007F:1F90', '01', 4444),
      'proc/net/tcp6': TCP_HEADER + tcpLine(0, '00000000000000000000000001000000:01BB', '0A', 4545),
      'proc/412/comm': 'inetd\n',
    },
    { 'proc/412/fd/3': 'socket:[4242]', 'proc/412/fd/4': '/dev/null' },
  );
  try {
    const listeners = readListeners({ root: t.root, now })!;
    assert.deepEqual(
      listeners.map((l) => [l.proto, l.address, l.port, l.process]),
      [
        ['tcp', '0.0.0.0', 23, 'inetd (pid 412)'],
        ['tcp', '127.0.0.1', 6379, null],
        ['tcp', '::1', 443, null],
      ],
    );
    const result = listeningSocketsCollector.collect({ root: t.root, now });
    assert.equal(result.verdict, 'fail');
    assert.equal(result.reason, 'telnet on 0.0.0.0:23/tcp (inetd (pid 412)), which sends credentials in clear');
  } finally {
    t.cleanup();
  }
  const redis = tree({ 'proc/net/tcp': TCP_HEADER + tcpLine(0, '00000000:18EB', '0A', 7) });
  try {
    assert.match(
      listeningSocketsCollector.collect({ root: redis.root, now }).reason,
      /Redis on 0\.0\.0\.0:6379, reachable beyond this machine/,
    );
  } finally {
    redis.cleanup();
  }
  const quiet = tree({ 'proc/net/tcp': TCP_HEADER + tcpLine(0, '0100007F:18EB', '0A', 7) });
  try {
    assert.equal(listeningSocketsCollector.collect({ root: quiet.root, now }).verdict, 'pass');
  } finally {
    quiet.cleanup();
  }
  const none = tree({});
  try {
    assert.equal(listeningSocketsCollector.collect({ root: none.root, now }).verdict, 'unknown');
  } finally {
    none.cleanup();
  }
});

test('posture-collectors-on-this-machine: a socket this test opens is found with this process', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const ctx = { root: '/', now: new Date() };
    const mine = readListeners(ctx)!.find((l) => l.proto === 'tcp' && l.port === port);
    assert.ok(mine, `port ${port} listed`);
    assert.equal(mine.address, '127.0.0.1');
    assert.match(mine.process ?? '', new RegExp(`\\(pid ${process.pid}\\)$`));
    for (const collector of [
      osReleaseCollector,
      sshdRootLoginCollector,
      sshdPasswordCollector,
      listeningSocketsCollector,
      autoUpdatesCollector,
      timeSyncCollector,
      identityFilesCollector,
      firewallCollector,
      pendingUpgradesCollector,
    ]) {
      const result = collector.collect(ctx);
      assert.ok(['pass', 'fail', 'unknown'].includes(result.verdict), `${collector.id}: ${result.verdict}`);
      assert.ok(result.reason.length > 0 && !result.reason.includes('\n'), `${collector.id}: one line`);
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

const DPKG_STATUS = `Package: openssl
Status: install ok installed
Priority: optional
Architecture: amd64
Source: openssl
Version: 3.0.15-1~deb12u1
Description: Secure Sockets Layer toolkit
 a continuation line: Version: 9.9

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.15-1~deb12u1)
Version: 3.0.15-1~deb12u1+b1

Package: telnetd
Status: deinstall ok config-files
Version: 0.17+2.4-2

Package: half
Status: install ok half-installed
Version: 1.0
`;

test('posture-installed-packages-from-the-dpkg-database-with-their-source', () => {
  const t = tree({ 'var/lib/dpkg/status': DPKG_STATUS });
  try {
    assert.deepEqual(installedPackages({ root: t.root, now: new Date() }), [
      {
        name: 'openssl',
        version: '3.0.15-1~deb12u1',
        source: 'openssl',
        sourceVersion: '3.0.15-1~deb12u1',
        architecture: 'amd64',
      },
      {
        name: 'libssl3',
        version: '3.0.15-1~deb12u1+b1',
        source: 'openssl',
        sourceVersion: '3.0.15-1~deb12u1',
        architecture: 'amd64',
      },
    ]);
  } finally {
    t.cleanup();
  }
  const real = installedPackages({ root: '/', now: new Date() });
  assert.ok(real && real.some((p) => p.name === 'dpkg'), 'this Debian machine has dpkg installed');
});

test('posture-auto-updates-time-sync-and-identity-files', () => {
  const now = new Date();
  const withUu = `${DPKG_STATUS}\nPackage: unattended-upgrades\nStatus: install ok installed\nVersion: 2.9.1+nmu3\n`;
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ 'var/lib/dpkg/status': DPKG_STATUS }, 'fail', /unattended-upgrades is not installed/],
    [
      {
        'var/lib/dpkg/status': withUu,
        'etc/apt/apt.conf.d/20auto-upgrades': 'APT::Periodic::Update-Package-Lists "1";\n',
      },
      'fail',
      /not switched on \(APT::Periodic::Unattended-Upgrade unset\)/,
    ],
    [
      {
        'var/lib/dpkg/status': withUu,
        'etc/apt/apt.conf.d/20auto-upgrades': 'APT::Periodic::Unattended-Upgrade "1";\n',
        'etc/apt/apt.conf.d/99off': 'APT::Periodic::Unattended-Upgrade "0";\n',
      },
      'fail',
      /"0"/,
    ],
    [
      {
        'var/lib/dpkg/status': withUu,
        'etc/apt/apt.conf.d/20auto-upgrades': 'APT::Periodic::Unattended-Upgrade "1";\n',
      },
      'pass',
      /runs/,
    ],
    [{}, 'unknown', /no dpkg database/],
  ];
  for (const [files, verdict, reason] of cases) {
    const t = tree(files);
    try {
      const result = autoUpdatesCollector.collect({ root: t.root, now });
      assert.equal(result.verdict, verdict, result.reason);
      assert.match(result.reason, reason);
    } finally {
      t.cleanup();
    }
  }
  const synced = tree({ 'run/systemd/timesync/synchronized': '' });
  const chrony = tree({ 'proc/77/comm': 'chronyd\n' });
  const drifting = tree({ 'proc/77/comm': 'bash\n' });
  try {
    assert.equal(timeSyncCollector.collect({ root: synced.root, now }).verdict, 'pass');
    assert.match(timeSyncCollector.collect({ root: chrony.root, now }).reason, /chronyd keeps the clock \(pid 77\)/);
    assert.equal(timeSyncCollector.collect({ root: drifting.root, now }).verdict, 'fail');
  } finally {
    synced.cleanup();
    chrony.cleanup();
    drifting.cleanup();
  }
  const id = makeTempDir('gatehouse-posture-id-');
  try {
    writeFileSync(join(id.dir, 'key.pem'), 'not a real key', { mode: 0o600 });
    chmodSync(id.dir, 0o700);
    assert.equal(identityFilesCollector.collect({ root: '/', now, identityDir: id.dir }).verdict, 'pass');
    chmodSync(join(id.dir, 'key.pem'), 0o644);
    assert.match(
      identityFilesCollector.collect({ root: '/', now, identityDir: id.dir }).reason,
      /key\.pem has mode 0644: other users can read/,
    );
    chmodSync(join(id.dir, 'key.pem'), 0o600);
    chmodSync(id.dir, 0o777);
    assert.match(
      identityFilesCollector.collect({ root: '/', now, identityDir: id.dir }).reason,
      /directory has mode 0777/,
    );
  } finally {
    chmodSync(id.dir, 0o700);
    id.cleanup();
  }
});

const NFT_DROP = `#!/usr/sbin/nft -f
flush ruleset
table inet filter {
  set blocked { type ipv4_addr; elements = { 192.0.2.1, 192.0.2.2 } }
  chain input {
    type filter hook input priority filter; policy drop; # default deny
    ct state established,related accept
    tcp dport { 22, 443 } accept
  }
  chain forward { type filter hook forward priority 0; policy drop; }
  chain output { type filter hook output priority 0; policy accept; }
}
`;
const NFT_ENABLED = {
  'etc/systemd/system/sysinit.target.wants/nftables.service': '/lib/systemd/system/nftables.service',
};

test('posture-firewall-from-the-boot-configuration: nftables, includes, iptables-persistent, ufw, firewalld', () => {
  const now = new Date();
  const cases: Array<[string, Record<string, string>, Record<string, string>, string, RegExp]> = [
    [
      'nftables drop, enabled',
      { 'etc/nftables.conf': NFT_DROP },
      NFT_ENABLED,
      'pass',
      /nftables: input chain inet filter\/input has policy drop \(from the configuration the boot loads/,
    ],
    [
      'nftables accept',
      { 'etc/nftables.conf': NFT_DROP.replace('policy drop; # default', 'policy accept; # default') },
      NFT_ENABLED,
      'fail',
      /^\/etc\/nftables\.conf: input chain inet filter\/input has policy accept/,
    ],
    [
      'nftables no policy',
      { 'etc/nftables.conf': 'table inet filter {\n  chain input {\n    type filter hook input priority 0;\n  }\n}\n' },
      NFT_ENABLED,
      'fail',
      /policy accept \(the default when unset\)/,
    ],
    ['nftables drop, not enabled', { 'etc/nftables.conf': NFT_DROP }, {}, 'fail', /nftables\.service is not enabled/],
    [
      'nftables drop in a netdev table only',
      {
        'etc/nftables.conf':
          'table netdev edge {\n chain input { type filter hook input priority 0; policy drop; }\n}\n',
      },
      NFT_ENABLED,
      'fail',
      /no input chain/,
    ],
    [
      'nftables include (glob, relative to /etc)',
      {
        'etc/nftables.conf': 'flush ruleset\ninclude "nftables.d/*.nft"\n',
        'etc/nftables.d/10-input.nft': 'table ip filter {\n  include "/etc/nftables.d/chains/input.inc"\n}\n',
        'etc/nftables.d/chains/input.inc': 'chain input {\n  type filter hook input priority 0\n  policy drop\n}\n',
      },
      { 'etc/systemd/system/multi-user.target.wants/nftables.service': '/lib/systemd/system/nftables.service' },
      'pass',
      /ip filter\/input has policy drop/,
    ],
    [
      'nftables add chain',
      {
        'etc/nftables.conf':
          'add table inet fw\nadd chain inet fw in { type filter hook input priority 0 ; policy drop ; }\n',
      },
      NFT_ENABLED,
      'pass',
      /inet fw\/in has policy drop/,
    ],
    [
      'ufw enabled, DROP',
      {
        'etc/ufw/ufw.conf': 'ENABLED=yes\nLOGLEVEL=low\n',
        'etc/default/ufw': 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n',
      },
      {},
      'pass',
      /ufw is enabled with DEFAULT_INPUT_POLICY="DROP"/,
    ],
    [
      'ufw disabled',
      { 'etc/ufw/ufw.conf': 'ENABLED=no\n', 'etc/default/ufw': 'DEFAULT_INPUT_POLICY="DROP"\n' },
      {},
      'fail',
      /ufw is installed but not enabled \(ENABLED=no in \/etc\/ufw\/ufw\.conf/,
    ],
    [
      'ufw enabled, ACCEPT',
      { 'etc/ufw/ufw.conf': 'ENABLED=yes\n', 'etc/default/ufw': 'DEFAULT_INPUT_POLICY="ACCEPT"\n' },
      {},
      'fail',
      /\/etc\/default\/ufw has DEFAULT_INPUT_POLICY "ACCEPT"/,
    ],
    [
      'iptables DROP',
      {
        'etc/iptables/rules.v4':
          '*nat\n:INPUT ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n',
      },
      {},
      'pass',
      /rules\.v4 sets INPUT policy DROP/,
    ],
    [
      'iptables ACCEPT',
      { 'etc/iptables/rules.v4': '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n*raw\n:INPUT DROP [0:0]\nCOMMIT\n' },
      {},
      'fail',
      /\/etc\/iptables\/rules\.v4 sets INPUT policy ACCEPT/,
    ],
    [
      'firewalld enabled',
      { 'etc/firewalld/firewalld.conf': 'DefaultZone=public\n' },
      { 'etc/systemd/system/multi-user.target.wants/firewalld.service': '/usr/lib/systemd/system/firewalld.service' },
      'pass',
      /firewalld is enabled with default zone public/,
    ],
    [
      'firewalld trusted',
      {
        'etc/firewalld/firewalld.conf': 'DefaultZone=trusted\n',
        'usr/lib/firewalld/zones/trusted.xml':
          '<?xml version="1.0"?>\n<zone target="ACCEPT"><short>Trusted</short></zone>\n',
      },
      { 'etc/systemd/system/multi-user.target.wants/firewalld.service': '/x' },
      'fail',
      /default zone trusted has target ACCEPT/,
    ],
    [
      'firewalld not enabled',
      { 'etc/firewalld/firewalld.conf': 'DefaultZone=public\n' },
      {},
      'fail',
      /firewalld\.service is not enabled/,
    ],
    // Debian's stock nftables.conf (accept) next to an enabled ufw: ufw's drop decides, as in the kernel.
    [
      'nftables accept but ufw drops',
      {
        'etc/nftables.conf': NFT_DROP.replace('policy drop; # default', 'policy accept; # default'),
        'etc/ufw/ufw.conf': 'ENABLED=yes\n',
        'etc/default/ufw': "DEFAULT_INPUT_POLICY='REJECT'\n",
      },
      NFT_ENABLED,
      'pass',
      /ufw is enabled with DEFAULT_INPUT_POLICY="REJECT"/,
    ],
    [
      'nothing',
      { 'etc/hostname': 'web-01\n' },
      {},
      'fail',
      /^no firewall configuration found \(nftables, iptables-persistent, ufw, firewalld\)$/,
    ],
  ];
  for (const [name, files, links, verdict, reason] of cases) {
    const t = tree({ ...files, 'proc/net/ip_tables_names': 'filter\n' }, links);
    try {
      const result = firewallCollector.collect({ root: t.root, now });
      assert.equal(result.verdict, verdict, `${name}: ${result.reason}`);
      assert.match(result.reason, reason, name);
      assert.equal(result.id, 'firewall');
      assert.deepEqual(result.details?.legacyIptablesLoaded, ['filter'], name);
      if (name === 'nftables drop, enabled') assert.equal(result.details?.source, 'nftables');
      if (name === 'nftables accept but ufw drops') assert.equal(result.details?.source, 'ufw');
    } finally {
      t.cleanup();
    }
  }
  const noEtc = tree({ 'proc/net/ip_tables_names': '' });
  try {
    const result = firewallCollector.collect({ root: noEtc.root, now });
    assert.equal(result.verdict, 'unknown');
    assert.match(result.reason, /no readable \/etc/);
  } finally {
    noEtc.cleanup();
  }
});

const SECURITY_LIST =
  'var/lib/apt/lists/deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages';
const MAIN_LIST = 'var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages';
const installed = (name: string, version: string, architecture = 'amd64') =>
  `Package: ${name}\nStatus: install ok installed\nArchitecture: ${architecture}\nVersion: ${version}\nDescription: x\n continued\n`;
const indexed = (name: string, version: string, architecture = 'amd64') =>
  `Package: ${name}\nSource: ${name}\nVersion: ${version}\nInstalled-Size: 1\nArchitecture: ${architecture}\nDescription: x\n Version: 99\n`;
const STATUS = [
  installed('openssl', '3.0.11-1~deb12u1'),
  installed('libssl3', '3.0.11-1~deb12u1'),
  installed('tzdata', '2024a-0+deb12u1', 'all'),
  installed('curl', '1:7.88.1-10+deb12u5'),
].join('\n');

test('posture-pending-upgrades-from-the-dpkg-database-and-apt-lists', () => {
  const now = new Date();
  const cases: Array<[string, Record<string, string>, string, RegExp, number]> = [
    [
      'a security fix',
      {
        [SECURITY_LIST]: [
          indexed('openssl', '3.0.15-1~deb12u1'),
          indexed('libssl3', '3.0.15-1~deb12u1'),
          indexed('unrelated', '9.9'),
        ].join('\n'),
      },
      'fail',
      /^2 security upgrades pending: openssl, libssl3 \(lists from \d{4}-\d\d-\d\d\); apt-get upgrade$/,
      2,
    ],
    [
      'newer, not security',
      { [MAIN_LIST]: [indexed('openssl', '3.0.15-1~deb12u1'), indexed('tzdata', '2024b-0+deb12u1', 'all')].join('\n') },
      'pass',
      /^no security upgrades pending, 2 non-security upgrades pending/,
      2,
    ],
    [
      'equal or older',
      {
        [MAIN_LIST]: [indexed('openssl', '3.0.11-1~deb12u1'), indexed('libssl3', '3.0.9-1')].join('\n\n\n'),
        [SECURITY_LIST]: indexed('openssl', '3.0.11-1~deb11u1'),
      },
      'pass',
      /, 0 non-security upgrades pending/,
      0,
    ],
    // ~deb12u1 sorts before the release without it; the epoch outweighs any upstream version.
    [
      'tilde and epoch',
      {
        [SECURITY_LIST]: [indexed('openssl', '3.0.11-1~deb12u0'), indexed('curl', '8.5.0-2')].join('\n'),
        [MAIN_LIST]: [indexed('libssl3', '3.0.11-1'), indexed('curl', '1:7.88.1-10+deb12u6')].join('\n'),
      },
      'pass',
      /, 2 non-security upgrades pending/,
      2,
    ],
    [
      'other architecture',
      {
        [SECURITY_LIST]: [
          indexed('openssl', '3.0.15-1~deb12u1', 'arm64'),
          indexed('tzdata', '2025a-0+deb12u1', 'arm64'),
        ].join('\n'),
      },
      'pass',
      /, 0 non-security/,
      0,
    ],
    [
      'lists compressed only',
      { [`${SECURITY_LIST}.lz4`]: 'binary' },
      'unknown',
      /lists are compressed \(1 in \/var\/lib\/apt\/lists\)/,
      -1,
    ],
    ['no lists', { 'var/lib/apt/lists/lock': '' }, 'unknown', /`apt-get update` has not run/, -1],
    // A pinned source of the next release and backports are not what `apt-get upgrade` installs.
    [
      'another release',
      {
        'etc/os-release': 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
        'var/lib/apt/lists/deb.debian.org_debian-security_dists_trixie-security_main_binary-amd64_Packages': indexed(
          'openssl',
          '3.5.1-1+deb13u1',
        ),
        'var/lib/apt/lists/deb.debian.org_debian_dists_bookworm-backports_main_binary-amd64_Packages': indexed(
          'curl',
          '1:8.14.1-2~bpo12+1',
        ),
        [MAIN_LIST]: indexed('tzdata', '2024b-0+deb12u1', 'all'),
      },
      'pass',
      /^no security upgrades pending, 1 non-security upgrade pending/,
      1,
    ],
  ];
  for (const [name, files, verdict, reason, pending] of cases) {
    const t = tree({ 'var/lib/dpkg/status': STATUS, ...files });
    try {
      const result = pendingUpgradesCollector.collect({ root: t.root, now });
      assert.equal(result.verdict, verdict, `${name}: ${result.reason}`);
      assert.match(result.reason, reason, name);
      assert.equal(result.id, 'pending-upgrades');
      if (pending >= 0) {
        assert.equal(result.details?.pending, pending, name);
        assert.match(String(result.details?.listsUpdatedAt), /^\d{4}-\d\d-\d\dT/, name);
      }
      if (name === 'a security fix') {
        assert.deepEqual((result.details?.upgrades as unknown[])[0], {
          name: 'openssl',
          architecture: 'amd64',
          installed: '3.0.11-1~deb12u1',
          candidate: '3.0.15-1~deb12u1',
          security: true,
        });
      }
      if (name === 'tilde and epoch') {
        assert.deepEqual(
          (result.details?.upgrades as Array<{ name: string; candidate: string }>).map((u) => [u.name, u.candidate]),
          [
            ['libssl3', '3.0.11-1'],
            ['curl', '1:7.88.1-10+deb12u6'],
          ],
        );
      }
    } finally {
      t.cleanup();
    }
  }
  const noDpkg = tree({ [MAIN_LIST]: indexed('openssl', '3.0.15-1') });
  try {
    assert.match(pendingUpgradesCollector.collect({ root: noDpkg.root, now }).reason, /no dpkg database/);
  } finally {
    noDpkg.cleanup();
  }
});
