/**
 * `gatehouse ca backup` and `gatehouse ca restore`: a consistent copy of a CA directory with a
 * manifest of checksums, and its checked restore into a new directory. Together, as each is
 * the other's counterpart and they share the manifest's vocabulary.
 */
import { GatehouseError } from '../../errors/errors.js';
import { flag, str, type CommandSpec, caDirOf } from '../command.js';
import { json, keyValues } from '../output.js';
import { localActor } from '../local-actor.js';

export const caBackup: CommandSpec = {
  path: ['ca', 'backup'],
  summary:
    'Copy a CA directory, running or not, into a new backup directory: one consistent snapshot of the database, the keys as they are (still encrypted), certificates, config and the admin identity, with a manifest of checksums.',
  options: {
    dir: { type: 'string', value: 'DIR', description: 'CA directory (or GATEHOUSE_CA_DIR)' },
    out: {
      type: 'string',
      value: 'PATH',
      required: true,
      description: 'New directory for the backup; must not exist (created 0700, its files 0600)',
    },
    json: { type: 'boolean', description: "Print the manifest and the backup's path as JSON" },
  },
  notes: [
    'Safe while `ca serve` runs: the database is read from one consistent snapshot (SQLite VACUUM INTO), never copied as a file. Needs no passphrase and prints no key material.',
    "Left out, and listed in manifest.json with the reason: the database's -wal and -shm files (their content is in the snapshot), unfinished writes, the passphrase file, symbolic links. A root key kept offline is not in DIR, so not in the backup.",
    'PATH appears complete or not at all. Records ca.backup_created in the audit trail. Exit 73 (GH_BACKUP_EXISTS) when PATH exists; 65 (GH_AUDIT_BROKEN) when the audit trail in the backup does not verify (the backup is kept, as evidence; `ca restore` refuses it).',
  ],
  async run(ctx) {
    const dir = caDirOf(ctx);
    const { createCaBackup } = await import('../../ca/backup.js');
    const result = await createCaBackup({ dir, out: str(ctx, 'out')!, actor: localActor(), env: ctx.env });
    const m = result.manifest;
    const broken = !m.audit.intact
      ? new GatehouseError(
          'GH_AUDIT_BROKEN',
          `backup written to ${result.path}, but the audit trail in it does not verify: ${m.audit.problem}; keep it as evidence (\`ca restore\` refuses it)`,
        )
      : null;
    if (flag(ctx, 'json')) {
      if (broken) throw broken;
      return void ctx.out(
        json({
          path: result.path,
          manifestSha256: result.manifestSha256,
          bytes: result.bytes,
          durationMs: Math.round(result.durationMs),
          manifest: m,
        }),
      );
    }
    ctx.out(`Backed up the CA in ${m.source} to ${result.path}\n\n`);
    ctx.out(
      keyValues([
        ['root fingerprint (SHA-256)', m.rootFingerprint],
        ['audit head', `${m.audit.head ?? '-'} (${m.audit.events} events${m.audit.intact ? ', intact' : ', BROKEN'})`],
        ['certificates, tokens', `${m.rows.certificates}, ${m.rows.tokens}`],
        ['schema version', m.schemaVersion],
        ['files', `${m.files.length} (${result.bytes} bytes) in ${Math.round(result.durationMs)} ms`],
        [
          'keys',
          `${m.keys.encrypted ? 'encrypted (the passphrase is not in the backup)' : 'not encrypted'}; root key ${m.keys.rootKeyIncluded ? 'included' : 'not included (kept offline)'}`,
        ],
        ['manifest SHA-256', result.manifestSha256],
      ]),
    );
    if (m.excluded.length) ctx.out(`\nLeft out:\n${m.excluded.map((e) => `  ${e.path}: ${e.reason}`).join('\n')}\n`);
    ctx.out(
      `\nThe backup holds the CA's private keys: store it like them. Check it with\n  gatehouse ca restore --from ${result.path} --dir NEW_DIR\n`,
    );
    if (broken) throw broken;
  },
};

export const caRestore: CommandSpec = {
  path: ['ca', 'restore'],
  summary:
    "Restore a backup made by `ca backup` into a new CA directory, after checking every file against the manifest, and the database's integrity and audit trail.",
  options: {
    from: {
      type: 'string',
      value: 'BACKUP',
      required: true,
      description: 'The backup directory (made by `gatehouse ca backup --out`)',
    },
    dir: {
      type: 'string',
      value: 'NEW_DIR',
      required: true,
      description: 'New or empty directory for the restored CA (created 0700, its files 0600)',
    },
    json: { type: 'boolean', description: 'Print what was restored as JSON' },
  },
  notes: [
    "Refuses, writing nothing: a backup with a changed, missing or added file, the manifest included (GH_BACKUP_CORRUPT, exit 65, naming the file); a database that fails SQLite's integrity check or whose audit trail does not verify (GH_AUDIT_BROKEN, 65); a NEW_DIR that is not empty (GH_CA_EXISTS, 73).",
    "Applies this Gatehouse's schema migrations, as `ca serve` would, and raises the CRL numbers to the current Unix time in seconds, so relying parties that saw newer CRLs from the lost CA accept the restored CA's. Certificates, revocations and tokens made after the backup are not in it (docs/operations.md).",
  ],
  async run(ctx) {
    const { restoreCaBackup } = await import('../../ca/backup-restore.js');
    const r = await restoreCaBackup({ from: str(ctx, 'from')!, dir: str(ctx, 'dir')! });
    if (flag(ctx, 'json')) {
      return void ctx.out(
        json({
          dir: r.dir,
          from: r.from,
          rootFingerprint: r.rootFingerprint,
          backupCreatedAt: r.manifest.createdAt,
          backupGatehouseVersion: r.manifest.gatehouseVersion,
          manifestSha256: r.manifestSha256,
          schemaVersion: r.schemaVersion,
          auditHead: r.auditHead,
          auditEvents: r.auditEvents,
          certificates: r.certificates,
          tokens: r.tokens,
          names: r.names,
          files: r.files,
          bytes: r.bytes,
          crlNumberFloor: r.crlNumberFloor,
          rootKeyIncluded: r.manifest.keys.rootKeyIncluded,
          keysEncrypted: r.manifest.keys.encrypted,
          passphraseFile: r.passphraseFile,
        }),
      );
    }
    ctx.out(
      `Restored the backup ${r.from} (made ${r.manifest.createdAt} by Gatehouse ${r.manifest.gatehouseVersion}) into ${r.dir}\n\n`,
    );
    ctx.out(
      keyValues([
        ['root fingerprint (SHA-256)', r.rootFingerprint],
        ['audit head', `${r.auditHead ?? '-'} (${r.auditEvents} events, intact)`],
        [
          'certificates',
          `${r.certificates.active} active, ${r.certificates.expired} expired, ${r.certificates.revoked} revoked`,
        ],
        ['tokens, reserved names', `${r.tokens}, ${r.names}`],
        ['files', `${r.files} (${r.bytes} bytes), every checksum matched`],
        ['manifest SHA-256', r.manifestSha256],
        ['CRL numbers', `continue above ${r.crlNumberFloor}`],
        [
          'root key',
          r.manifest.keys.rootKeyIncluded
            ? 'included'
            : 'not included (kept offline): `ca root-crl --root-key FILE` re-signs the root CRL',
        ],
        [
          'keys',
          r.passphraseFile
            ? `encrypted; passphrase file ${r.passphraseFile.path} ${r.passphraseFile.present ? 'is present' : 'is NOT on this machine: put it there, or pass --passphrase-file to ca serve'}`
            : 'not encrypted',
        ],
      ]),
    );
    ctx.out(
      `\nNext:\n  gatehouse audit verify --dir ${r.dir} --anchor ${r.auditHead ?? 'SEQ:HASH'}\n  gatehouse ca serve --dir ${r.dir}\n`,
    );
  },
};
