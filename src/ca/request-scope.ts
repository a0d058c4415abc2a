/**
 * What every handler on the CA's HTTPS listener gets for one request, and the shape of a mount:
 * a handler the caller of startCaServer puts beside the CA's own endpoints (the CLI mounts the
 * dashboard this way, so ca/ never imports it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';
import type { SecretService } from '../secrets/service.js';
import type { Authority } from './authority.js';
import type { CaMaterial } from './ca-dir.js';
import type { CrlPublisher } from './crl-publisher.js';
import type { RequestRateLimits } from './rate-limit.js';

export interface RequestScope {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  authority: Authority;
  secrets: SecretService;
  crls: CrlPublisher;
  logger: Logger;
  maxBodyBytes: number;
  /** The rate limits of /enroll and /renew (limits.enroll, limits.renew). */
  rateLimits: RequestRateLimits;
  /** Set by mTLS endpoints once the peer is known, for the access log. */
  identity?: string;
  /** The CA directory as loaded at start (root rotations through the admin API read it afresh). */
  material: CaMaterial;
}

/**
 * Requests the CA's own endpoints do not serve go to the first mount that owns their path;
 * a mount does its own authentication (the dashboard: requireAdmin in peer-auth.ts).
 */
export interface CaMount {
  owns(path: string): boolean;
  route(scope: RequestScope, method: string, url: URL): Promise<void>;
}
