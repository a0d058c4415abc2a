/**
 * `agent report`: this machine's posture (src/posture), sent to the CA over mutual TLS with the
 * identity's current certificate, which records it and answers with its own score.
 */
import { resolve } from 'node:path';
import { GatehouseError } from '../errors/errors.js';
import { collectPosture, type PostureReport } from '../posture/report.js';
import { loadIdentity, readAgentSettings } from './agent-state.js';
import { CaClient } from './ca-client.js';

export interface ReportOptions {
  dir: string;
  caUrl?: string;
  /** Read the system below this directory instead of / (an image, a test fixture). */
  root?: string;
  dryRun?: boolean;
  now?: Date;
}

export interface ReportOutcome {
  report: PostureReport;
  /** The CA's answer; null on a dry run. */
  received: { spiffeId: string; receivedAt: string; score: number | null; failing: string[] } | null;
}

export async function reportPosture(options: ReportOptions): Promise<ReportOutcome> {
  const identity = loadIdentity(options.dir);
  const report = collectPosture({
    root: resolve(options.root ?? '/'),
    now: options.now ?? new Date(),
    identityDir: resolve(options.dir),
  });
  if (options.dryRun) return { report, received: null };
  const caUrl = options.caUrl ?? readAgentSettings(options.dir)?.caUrl;
  if (!caUrl)
    throw new GatehouseError(
      'GH_USAGE',
      `no CA URL: pass --ca, or enroll ${options.dir} with \`gatehouse agent enroll\` so agent.json records it`,
    );
  const client = new CaClient({
    baseUrl: caUrl,
    rootPem: identity.caPem,
    identity: { keyPem: identity.keyPem, certPem: identity.certPem },
  });
  try {
    return { report, received: await client.postJson('v1/posture', report) };
  } finally {
    client.close();
  }
}
