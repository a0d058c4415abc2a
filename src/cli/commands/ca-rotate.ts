/** `gatehouse ca rotate intermediate`: a new issuing CA under the same root, with no outage. */
import { GatehouseError } from '../../errors/errors.js';
import { flag, str, type CommandSpec } from '../command.js';
import { json, keyValues } from '../output.js';
import { localActor } from '../local-actor.js';
import { resolve } from 'node:path';

export const caRotateIntermediate: CommandSpec = {
  path: ['ca', 'rotate', 'intermediate'],
  summary:
    'Replace the issuing CA with a new key and certificate under the same root; the old one keeps signing its CRL until its last certificate expires.',
  options: {
    dir: { type: 'string', value: 'DIR', required: true, description: 'CA directory' },
    'root-key': { type: 'string', value: 'FILE', description: 'The root key, when it is kept offline (not in DIR)' },
    'passphrase-file': { type: 'string', value: 'FILE', description: 'Passphrase for encrypted CA keys' },
    json: { type: 'boolean', description: 'Print the old and new issuing CA as JSON' },
  },
  notes: [
    "Safe while `ca serve` runs: it notices the rotation within about 2 seconds, issues every new certificate (its own included) from the new issuing CA, and keeps serving the old one's CRL at /crl/<id> and in /crls. Clients change nothing: their trust is the root. Gateways should read /crls (docs/gateway.md, revocation).",
    'Exit 69 (GH_CA_ROOT_KEY_OFFLINE) without the root key. Recorded as ca.intermediate_rotated in the audit trail. Rolling back: docs/operations.md, "Rotating the intermediate".',
  ],
  async run(ctx) {
    const dir = str(ctx, 'dir')!;
    const { withRotationLock } = await import('../../ca/root-rotation-ops.js');
    const { assertCaDirPermissions } = await import('../../ca/ca-dir.js');
    // A wrong --dir is said to be wrong before the lock file is written into it.
    assertCaDirPermissions(resolve(dir));
    // Under the lock `ca rotate root` takes: both rewrite the issuing CA's files, and the check
    // that no root rotation is in progress must still hold when the files are written.
    await withRotationLock(resolve(dir), async () => {
      const { CA_FILES, caPath, loadCaMaterial, readKeyFile } = await import('../../ca/ca-dir.js');
      const { rotateIntermediate } = await import('../../ca/issuers.js');
      const { openCaStore } = await import('../../ca/store-open.js');
      const material = loadCaMaterial(dir, { passphraseFile: str(ctx, 'passphrase-file') });
      const currentKey = material.intermediateKey;
      const currentKeyFile = material.config.keys.intermediate;
      if (currentKey === null || currentKeyFile === null) {
        throw new GatehouseError(
          'GH_CA_ROTATION',
          `the external CA at ${material.config.externalCa?.url ?? '?'} signs this CA's certificates and holds the issuing key: rotate its issuing CA there (docs/operations.md, "External signer")`,
        );
      }
      const { loadRootRotation } = await import('../../ca/root-rotation.js');
      if (loadRootRotation(material.dir)?.state.phase === 'rotating')
        throw new GatehouseError(
          'GH_CA_ROTATION',
          'a root rotation is in progress, and it made a new issuing CA already: finish or abort it first (gatehouse ca rotate status)',
        );
      const rootKeyFile = str(ctx, 'root-key');
      const rootKey = rootKeyFile ? readKeyFile(rootKeyFile, material.passphrase) : material.rootKey;
      if (!rootKey) {
        throw new GatehouseError(
          'GH_CA_ROOT_KEY_OFFLINE',
          material.config.keys.root === null && material.config.crl.rootCrl === 'external'
            ? 'the root was imported without its key: ask its PKI for a new issuing CA certificate instead'
            : 'the root key is kept offline; pass --root-key FILE',
        );
      }
      const store = await openCaStore(material.dir, material.config);
      try {
        const now = new Date();
        // The retired issuer's CRL must outlive every certificate it signed, revoked ones included.
        const { lastNotAfter } = await import('../../ca/active-identities.js');
        const lastLeafNotAfter = await lastNotAfter(store, now);
        const result = await rotateIntermediate({
          dir: material.dir,
          config: material.config,
          rootDer: material.rootDer,
          rootKey,
          passphrase: material.passphrase,
          lastLeafNotAfter,
          now,
          current: {
            der: material.intermediateDer,
            key: currentKey,
            certPath: caPath(material.dir, CA_FILES.intermediateCert),
            keyPath: caPath(material.dir, currentKeyFile),
          },
        });
        await store.appendAudit([
          {
            time: now,
            type: 'ca.intermediate_rotated',
            actor: localActor(),
            details: {
              previous: result.previous.fingerprint,
              previousId: result.previous.id,
              next: result.next.fingerprint,
              nextId: result.next.id,
              previousCrlUntil: result.previous.crlUntil.toISOString(),
            },
          },
        ]);
        if (flag(ctx, 'json')) {
          return void ctx.out(
            json({
              previous: { ...result.previous, crlUntil: result.previous.crlUntil.toISOString() },
              next: {
                id: result.next.id,
                fingerprint: result.next.fingerprint,
                notAfter: result.next.notAfter.toISOString(),
              },
            }),
          );
        }
        ctx.out('Rotated the issuing CA\n\n');
        ctx.out(
          keyValues([
            ['new issuing CA', `${result.next.id} (valid until ${result.next.notAfter.toISOString()})`],
            [
              'retired issuing CA',
              `${result.previous.id} (signs its CRL until ${result.previous.crlUntil.toISOString()})`,
            ],
            ['CRLs', "/crl is the new one's; /crl/<id> each one's; /crls all, with their signers"],
          ]),
        );
        ctx.out('\nA running `ca serve` puts it in force within seconds; nothing changes for clients.\n');
      } finally {
        await store.close();
      }
    });
  },
};
