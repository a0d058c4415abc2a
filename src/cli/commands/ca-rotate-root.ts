/**
 * `gatehouse ca rotate root|status|finish|abort`: replace the root with no outage
 * (src/ca/root-rotation.ts says how, docs/operations.md "Rotating the root" says when).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GatehouseError } from '../../errors/errors.js';
import { flag, str, type CommandContext, type CommandSpec } from '../command.js';
import { json, keyValues } from '../output.js';

const COMMON = {
  dir: { type: 'string', value: 'DIR', required: true, description: 'CA directory' },
  'passphrase-file': { type: 'string', value: 'FILE', description: 'Passphrase for encrypted CA keys' },
  json: { type: 'boolean', description: 'Print the result as JSON' },
} as const;

async function openCa(ctx: CommandContext) {
  const { CA_FILES, loadCaMaterial } = await import('../../ca/ca-dir.js');
  const { openSqliteStore } = await import('../../store/sqlite.js');
  const { loadRootRotation } = await import('../../ca/root-rotation.js');
  const material = loadCaMaterial(str(ctx, 'dir')!, { passphraseFile: str(ctx, 'passphrase-file') });
  if (material.config.externalCa) throw new GatehouseError('GH_CA_ROTATION', 'the external CA signs this CA\'s certificates and holds its root: rotate the root there');
  const store = openSqliteStore(join(material.dir, CA_FILES.database));
  return { material, store, rotation: loadRootRotation(material.dir), CA_FILES };
}

/** When the newest certificate handed out so far expires: the CRL and bundle horizons of a rotation. */
async function lastLeafNotAfter(store: import('../../store/store.js').Store, now: Date): Promise<Date> {
  return (await store.listCerts({})).reduce((max, c) => (c.notAfter > max ? c.notAfter : max), now);
}

export const caRotateRoot: CommandSpec = {
  path: ['ca', 'rotate', 'root'],
  summary: 'Start a root rotation: a next root, cross-certificates both ways, and a new issuing CA; agents take the next root with their next certificate.',
  options: {
    ...COMMON,
    'root-key': { type: 'string', value: 'FILE', description: 'The current root key, when it is kept offline (not in DIR)' },
    'next-root-key-out': { type: 'string', value: 'FILE', description: 'With an offline root: write the next root key here (keep it offline too)' },
    'import-root': { type: 'string', value: 'FILE', description: 'Rotate to this existing root certificate (PEM) instead of making one' },
    'import-root-key': { type: 'string', value: 'FILE', description: 'Its key: used once here, never copied (the root is offline from the finish on)' },
  },
  notes: [
    'Safe while `ca serve` runs: within about 2 seconds it serves both roots at /roots, and every certificate it issues (its own included) comes from the new issuing CA, certified by the current root so every peer keeps verifying it. Each agent gets the next root in its trust bundle with its next certificate, and takes it only because the current root vouches for it (a cross-certificate).',
    'Then watch `gatehouse ca rotate status`, and run `gatehouse ca rotate finish` once every identity has moved, or `gatehouse ca rotate abort` to go back. Exit 75 (GH_CA_ROTATION) while a rotation is in progress; exit 69 without the root key. Audited as ca.root_rotation_started.',
  ],
  async run(ctx) {
    const { material, store, rotation, CA_FILES } = await openCa(ctx);
    try {
      const { loadPrivateKey } = await import('../../pki/keys.js');
      const { caPath } = await import('../../ca/ca-dir.js');
      const { startRootRotation } = await import('../../ca/root-rotation.js');
      const { sha256Hex } = await import('../../pki/certificate.js');
      if (rotation?.state.phase === 'rotating') throw new GatehouseError('GH_CA_ROTATION', `a root rotation is in progress since ${rotation.state.startedAt}: see \`gatehouse ca rotate status --dir ${material.dir}\``);
      const rootKeyFile = str(ctx, 'root-key');
      const rootKey = rootKeyFile ? loadPrivateKey(readFileSync(rootKeyFile, 'utf8'), material.passphrase, rootKeyFile) : material.rootKey;
      if (!rootKey) {
        throw new GatehouseError('GH_CA_ROOT_KEY_OFFLINE', material.config.crl.rootCrl === 'external'
          ? 'the root was imported without its key: its own PKI replaces it'
          : 'the root key is kept offline; pass --root-key FILE (and --next-root-key-out FILE for the next root\'s key)');
      }
      const offline = material.config.keys.root === null;
      const keyOut = str(ctx, 'next-root-key-out');
      const importRoot = str(ctx, 'import-root');
      const importKey = str(ctx, 'import-root-key');
      if (Boolean(importRoot) !== Boolean(importKey)) throw new GatehouseError('GH_USAGE', '--import-root and --import-root-key go together: the cross-certificates and the new issuing CA are signed with the key');
      if (importRoot && keyOut) throw new GatehouseError('GH_USAGE', '--next-root-key-out makes a new key; an imported root\'s key stays where it is');
      if (offline && !keyOut && !importRoot) throw new GatehouseError('GH_USAGE', 'the root key is kept offline, so the next one is too: pass --next-root-key-out FILE');
      if (!offline && keyOut) throw new GatehouseError('GH_USAGE', '--next-root-key-out is for a CA whose root key is kept offline; this one keeps it in DIR, and so will the next');
      let imported = null;
      if (importRoot && importKey) {
        const { readImportedPki } = await import('../../ca/import-pki.js');
        const checked = readImportedPki({ root: importRoot, rootKey: importKey }, material.passphrase, material.config, new Date());
        imported = { der: checked.rootDer, key: checked.rootKey!, keyPath: resolve(importKey) };
      }
      if (material.intermediateKey === null || material.config.keys.intermediate === null) throw new GatehouseError('GH_CA_ROTATION', 'this CA holds no issuing key');
      const now = new Date();
      const result = await startRootRotation({
        dir: material.dir, config: material.config, rootDer: material.rootDer, rootKey, passphrase: material.passphrase, now,
        nextRootKeyOut: keyOut ? resolve(keyOut) : null, imported, lastLeafNotAfter: await lastLeafNotAfter(store, now),
        current: { der: material.intermediateDer, key: material.intermediateKey, certPath: caPath(material.dir, CA_FILES.intermediateCert), keyPath: caPath(material.dir, material.config.keys.intermediate) },
      });
      await store.appendAudit([{
        time: now, type: 'ca.root_rotation_started', actor: 'local:cli',
        details: { previousRoot: result.state.previousRoot, nextRoot: result.state.nextRoot, issuerId: result.issuer.id, retiredIssuerId: result.retiredIssuerId, nextRootKeyOffline: result.state.nextRootKey === 'offline', imported: imported !== null },
      }]);
      if (flag(ctx, 'json')) return void ctx.out(json({ ...result.state, nextRootKeyFile: result.nextRootKeyPath, nextRootFingerprint: sha256Hex(result.nextRootDer) }));
      ctx.out('Started a root rotation\n\n');
      ctx.out(keyValues([
        ['current root', result.state.previousRoot],
        ['next root', result.state.nextRoot],
        ['next root key', `${result.nextRootKeyPath}${result.state.nextRootKey === 'offline' ? '  (offline: keep it away from this machine; `ca rotate finish` asks for it)' : ''}`],
        ['new issuing CA', `${result.issuer.id} (certified by both roots; by the current one until the finish)`],
      ]));
      ctx.out(`\nA running \`ca serve\` serves both roots within seconds. Agents take the next root with their next certificate.\nFollow it:  gatehouse ca rotate status --dir ${material.dir}\n`);
    } finally {
      await store.close();
    }
  },
};

export const caRotateStatus: CommandSpec = {
  path: ['ca', 'rotate', 'status'],
  summary: 'Show a root rotation\'s progress: how many active identities hold a certificate from the new chain (their trust bundle came with it).',
  options: { ...COMMON },
  notes: ['Exit 0 also when no rotation is in progress. On a terminal, a progress bar.'],
  async run(ctx) {
    const { material, store, rotation } = await openCa(ctx);
    try {
      if (!rotation) {
        if (flag(ctx, 'json')) return void ctx.out(json({ phase: 'none' }));
        return void ctx.out('No root rotation has been started on this CA.\n');
      }
      const { rotationProgress } = await import('../../ca/rotation-progress.js');
      const now = new Date();
      const progress = await rotationProgress(store, rotation.state.issuerId, now);
      const s = rotation.state;
      if (flag(ctx, 'json')) {
        return void ctx.out(json({
          ...s, identities: { total: progress.total, moved: progress.moved }, trustBundles: { total: progress.total, updated: progress.moved },
          pending: progress.pending.map((p) => ({ ...p, notAfter: p.notAfter.toISOString() })),
        }));
      }
      const percent = progress.total === 0 ? 100 : Math.floor((100 * progress.moved) / progress.total);
      const rows: Array<[string, string]> = [
        ['phase', s.phase === 'rotating' ? `rotating since ${s.startedAt}` : s.phase === 'finished' ? `finished at ${s.finishedAt}${s.forced ? ' (forced)' : ''}` : `aborted at ${s.abortedAt}`],
        ['current root', s.phase === 'finished' ? s.nextRoot : s.previousRoot],
        [s.phase === 'finished' ? 'previous root' : 'next root', s.phase === 'finished' ? `${s.previousRoot} (in agents' bundles until ${s.bundleUntil})` : `${s.nextRoot}${s.phase === 'aborted' ? ' (dropped)' : ''}`],
        ['identities moved', `${progress.moved} of ${progress.total} (${percent} %): their certificates come from the new issuing CA ${s.issuerId}`],
        ['trust bundles updated', `${progress.moved} of ${progress.total}: each came with its certificate`],
      ];
      ctx.out(keyValues(rows));
      if (process.stdout.isTTY) ctx.out(`\n${bar(percent)}\n`);
      if (s.phase === 'rotating') {
        if (progress.pending.length === 0) ctx.out(`\nEvery identity has moved: gatehouse ca rotate finish --dir ${material.dir}\n`);
        else {
          ctx.out(`\nNot moved yet (they move at their next renewal; the soonest first):\n`);
          for (const p of progress.pending.slice(0, 20)) ctx.out(`  ${p.spiffeId}  serial ${p.serial}  expires ${p.notAfter.toISOString()}\n`);
          if (progress.pending.length > 20) ctx.out(`  … and ${progress.pending.length - 20} more (--json lists all)\n`);
        }
      }
    } finally {
      await store.close();
    }
  },
};

function bar(percent: number): string {
  const width = 40;
  const full = Math.round((percent / 100) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${percent} %`;
}

export const caRotateFinish: CommandSpec = {
  path: ['ca', 'rotate', 'finish'],
  summary: 'Finish a root rotation: the next root is the root; tokens that pin the previous one are refused; new certificates chain to the next root.',
  options: {
    ...COMMON,
    force: { type: 'boolean', description: 'Finish although some identities have not moved (they must enroll again)' },
    'next-root-key': { type: 'string', value: 'FILE', description: 'The next root key, when it is kept offline (for its first root CRL)' },
  },
  notes: [
    'Refused (exit 75, GH_CA_ROTATION) until every active identity holds a certificate from the new issuing CA, unless --force. The previous root stays in the trust bundle agents get until the last certificate handed out before the finish expires, then agents drop it. Prints the pin for new join tokens. Audited as ca.root_rotation_finished.',
  ],
  async run(ctx) {
    const { material, store, rotation } = await openCa(ctx);
    try {
      if (!rotation || rotation.state.phase !== 'rotating') throw new GatehouseError('GH_CA_ROTATION', rotation ? `the root rotation started at ${rotation.state.startedAt} is already ${rotation.state.phase}` : 'no root rotation is in progress; start one with `gatehouse ca rotate root`');
      const { rotationProgress } = await import('../../ca/rotation-progress.js');
      const { finishRootRotation } = await import('../../ca/root-rotation.js');
      const { generateRootCrl } = await import('../../ca/crl-publisher.js');
      const { prepareSigningAuthority } = await import('../../pki/leaf-certificate.js');
      const { loadPrivateKey } = await import('../../pki/keys.js');
      const now = new Date();
      const progress = await rotationProgress(store, rotation.state.issuerId, now);
      const forced = flag(ctx, 'force');
      if (progress.pending.length > 0 && !forced) {
        const list = progress.pending.slice(0, 5).map((p) => p.spiffeId).join(', ');
        throw new GatehouseError('GH_CA_ROTATION', `${progress.pending.length} of ${progress.total} active identities have not moved to the new chain yet (${list}${progress.pending.length > 5 ? ', …' : ''}); they move at their next renewal. Wait (gatehouse ca rotate status), or pass --force: those machines must then enroll again`);
      }
      const keyFile = str(ctx, 'next-root-key');
      const givenKey = keyFile ? loadPrivateKey(readFileSync(keyFile, 'utf8'), material.passphrase, keyFile) : null;
      const { state, nextRootKey } = finishRootRotation({
        dir: material.dir, config: material.config, rotation, nextRootKey: givenKey, passphrase: material.passphrase,
        lastLeafNotAfter: await lastLeafNotAfter(store, now), forced, now,
      });
      // The next root's first CRL, so /crl/root is signed by the root in force from the start.
      if (material.config.crl.rootCrl !== 'external') await generateRootCrl(store, prepareSigningAuthority(rotation.nextRootDer, nextRootKey), material.config, now);
      await store.appendAudit([{
        time: now, type: 'ca.root_rotation_finished', actor: 'local:cli',
        details: { previousRoot: state.previousRoot, nextRoot: state.nextRoot, forced, notMoved: progress.pending.length, bundleUntil: state.bundleUntil },
      }]);
      if (flag(ctx, 'json')) return void ctx.out(json({ ...state, notMoved: progress.pending.map((p) => p.spiffeId) }));
      ctx.out('Finished the root rotation\n\n');
      ctx.out(keyValues([
        ['root', state.nextRoot],
        ['previous root', `${state.previousRoot} (refused in join tokens; in agents' bundles until ${state.bundleUntil})`],
        ['pin for new join tokens', state.nextRoot],
        ...(forced && progress.pending.length ? [['not moved', `${progress.pending.length}: they must enroll again`] as [string, string]] : []),
      ]));
      ctx.out(`\nA running \`ca serve\` serves only the new root within seconds. Make new join tokens: gatehouse token create --dir ${material.dir} --role ROLE\n`);
    } finally {
      await store.close();
    }
  },
};

export const caRotateAbort: CommandSpec = {
  path: ['ca', 'rotate', 'abort'],
  summary: 'Abort a root rotation before it finishes: back to the current root; agents drop the next one with their next certificate.',
  options: { ...COMMON },
  notes: [
    'The next root and its key (when kept in DIR) are deleted. The new issuing CA stays, certified by the current root, so every certificate issued during the rotation keeps verifying. Audited as ca.root_rotation_aborted.',
  ],
  async run(ctx) {
    const { material, store, rotation } = await openCa(ctx);
    try {
      if (!rotation || rotation.state.phase !== 'rotating') throw new GatehouseError('GH_CA_ROTATION', rotation ? `the root rotation started at ${rotation.state.startedAt} is already ${rotation.state.phase}` : 'no root rotation is in progress');
      const { abortRootRotation } = await import('../../ca/root-rotation.js');
      const now = new Date();
      const state = abortRootRotation(material.dir, rotation, await lastLeafNotAfter(store, now), now);
      await store.appendAudit([{ time: now, type: 'ca.root_rotation_aborted', actor: 'local:cli', details: { previousRoot: state.previousRoot, nextRoot: state.nextRoot } }]);
      if (flag(ctx, 'json')) return void ctx.out(json(state));
      ctx.out(`Aborted the root rotation: the root stays ${state.previousRoot}; agents drop ${state.nextRoot} with their next certificate.\n`);
    } finally {
      await store.close();
    }
  },
};
