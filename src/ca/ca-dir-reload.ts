/**
 * Puts in force, in a running `ca serve`, what another process changed in the CA directory:
 * `ca rotate intermediate` (a new issuing CA, the old one retired) and `ca rotate
 * root|finish|abort` (root.pem and rotation/root.json). The files are polled by a cheap stamp;
 * when one changed, the new material is loaded and handed to the Authority and the CRL
 * publisher within seconds, and the server is told to renew its TLS context.
 */
import type { Logger } from '../log/logger.js';
import { prepareSigningAuthority } from '../pki/leaf-certificate.js';
import type { Authority } from './authority.js';
import { CA_FILES, caPath, loadIssuerMaterial, loadRootMaterial, type CaMaterial } from './ca-dir.js';
import type { CrlPublisher } from './crl-publisher.js';
import { issuerFilesStamp, issuerIdOf } from './issuers.js';
import { rootFilesStamp } from './root-rotation.js';

export interface CaDirReloadOptions {
  material: CaMaterial;
  authority: Authority;
  crls: CrlPublisher;
  logger: Logger;
  now: () => Date;
  intervalMs: number;
  /**
   * Called after every reload, inside its error handling: `caChanged` when the issuing CA or
   * the root in force changed, so the server's own certificate must be issued again.
   */
  refreshTls(caChanged: boolean): Promise<void>;
}

/**
 * A half-written rotation (the new key beside the old certificate) does not load and is tried
 * again on the next tick. In registration-authority mode the external CA's issuing CA is not
 * rotated from here. The timer is unref'd; clear it to stop.
 */
export function watchCaDir(options: CaDirReloadOptions): NodeJS.Timeout {
  const { material, authority, crls, logger, now } = options;
  const { config } = material;
  const issuerKeyFile = config.keys.intermediate;
  const rootCertPath = caPath(material.dir, CA_FILES.rootCert);
  const issuerFiles = () =>
    issuerKeyFile === null
      ? null
      : issuerFilesStamp(
          material.dir,
          caPath(material.dir, CA_FILES.intermediateCert),
          caPath(material.dir, issuerKeyFile),
        );
  let issuerStamp = issuerFiles();
  let rootStamp = rootFilesStamp(material.dir, rootCertPath);
  const timer = setInterval(async () => {
    const stamp = issuerFiles();
    const nextRootStamp = rootFilesStamp(material.dir, rootCertPath);
    if (stamp === issuerStamp && nextRootStamp === rootStamp) return;
    try {
      const previousIssuer = authority.issuer;
      const previousRoot = authority.rootDer;
      if (nextRootStamp !== rootStamp) {
        const root = loadRootMaterial(material);
        if (authority.rotation?.state.phase === 'rotating' && root.rotation === null) {
          logger.warn('ca.root_rotation_state_missing', {
            effect:
              'the root rotation in progress is no longer served: one root again, agents keep the next root they took',
            fix: 'restore rotation/root.json from a backup, or abort the rotation',
          });
        }
        authority.useRoot(root.rootDer, root.rotation);
        crls.useRoot(root.rootDer, root.rootKey);
        rootStamp = nextRootStamp;
        logger.info('ca.root_reloaded', {
          rootFingerprint: authority.rootFingerprint,
          rotation: root.rotation?.state.phase ?? null,
        });
      }
      if (stamp !== issuerStamp) {
        const next = loadIssuerMaterial(material, now());
        // The new issuing CA's CRL is in /crls before its first certificate is handed out.
        await crls.prepare({
          current: prepareSigningAuthority(next.intermediateDer, next.intermediateKey),
          retired: next.retired.map((r) => prepareSigningAuthority(r.der, r.key)),
        });
        authority.useIssuers(next.intermediateDer, next.intermediateKey, next.retired);
        issuerStamp = stamp;
        logger.info('ca.issuers_reloaded', {
          issuerId: issuerIdOf(next.intermediateDer),
          retired: next.retired.map((r) => issuerIdOf(r.der)),
        });
      }
      await crls.refresh();
      await options.refreshTls(
        !previousIssuer.certDer.equals(authority.issuer.certDer) || !previousRoot.equals(authority.rootDer),
      );
    } catch (err) {
      logger.warn('ca.issuers_reload_failed', {
        err,
        effect: 'the issuing CAs and roots in force stay; tried again in a moment',
      });
    }
  }, options.intervalMs);
  timer.unref();
  return timer;
}
