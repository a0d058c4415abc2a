/**
 * `gatehouse ca root-crl`: re-signs the root CRL with a root key kept offline, the one CA
 * signature `ca serve` cannot make itself when the root key is not in the CA directory.
 */
import { readFileSync } from 'node:fs';
import { GatehouseError } from '../../errors/errors.js';
import { loadPrivateKey } from '../../pki/keys.js';
import { flag, str, type CommandSpec } from '../command.js';
import { json } from '../output.js';

export const caRootCrl: CommandSpec = {
  path: ['ca', 'root-crl'],
  summary: 'Re-sign the root CRL with the offline root key (needed when the root key is not in the CA directory).',
  options: {
    dir: { type: 'string', value: 'DIR', required: true, description: 'CA directory' },
    'root-key': { type: 'string', value: 'FILE', required: true, description: 'The offline root key' },
    'passphrase-file': { type: 'string', value: 'FILE', description: 'Passphrase for encrypted CA keys' },
    json: { type: 'boolean', description: "Print the new CRL's number and dates as JSON" },
  },
  async run(ctx) {
    const dir = str(ctx, 'dir')!;
    const { loadCaMaterial, readPassphrase } = await import('../../ca/ca-dir.js');
    const { generateRootCrl } = await import('../../ca/crl-publisher.js');
    const { prepareSigningAuthority } = await import('../../pki/leaf-certificate.js');
    const { openCaStore } = await import('../../ca/store-open.js');
    const material = loadCaMaterial(dir, { passphraseFile: str(ctx, 'passphrase-file') });
    if (material.config.crl.rootCrl === 'external') {
      throw new GatehouseError(
        'GH_USAGE',
        "this CA does not publish the root's CRL (crl.rootCrl: external in gatehouse.yaml): the imported root's own PKI does; a CRL signed here would never be served",
      );
    }
    const passphrase = readPassphrase(str(ctx, 'passphrase-file') ?? material.config.keys.passphraseFile);
    const rootKey = loadPrivateKey(readFileSync(str(ctx, 'root-key')!, 'utf8'), passphrase, str(ctx, 'root-key'));
    const store = await openCaStore(material.dir, material.config);
    try {
      const crl = await generateRootCrl(
        store,
        prepareSigningAuthority(material.rootDer, rootKey),
        material.config,
        new Date(),
      );
      if (flag(ctx, 'json'))
        return void ctx.out(
          json({
            number: crl.number.toString(),
            thisUpdate: crl.thisUpdate.toISOString(),
            nextUpdate: crl.nextUpdate.toISOString(),
          }),
        );
      ctx.out(
        `root CRL #${crl.number} valid until ${crl.nextUpdate.toISOString()}; a running CA picks it up when its copy nears nextUpdate (restart it to serve it now)\n`,
      );
    } finally {
      await store.close();
    }
  },
};
