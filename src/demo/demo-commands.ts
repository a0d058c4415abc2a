/**
 * The walkthrough `gatehouse demo` prints once it runs: the copy-paste curl and CLI lines of the
 * story, each with the answer it should get. demo-check.ts checks the same promises unattended.
 */
import { join } from 'node:path';
import {
  ALLOWED_DEVICE,
  DEMO_SECRET,
  DENY_MESSAGE,
  REPORTS_MIN_SCORE,
  UNLISTED_DEVICE,
  type DemoWorld,
} from './demo.js';

/** The copy-paste commands, each with what it answers. */
export function demoCommands(world: DemoWorld, rel: (p: string) => string, cli: string): string {
  const url = world.gatewayUrl;
  const cacert = `--cacert ${rel(join(world.dirs.gateway, 'ca.pem'))}`;
  const as = (dir: string) => `--cert ${rel(join(dir, 'cert.pem'))} --key ${rel(join(dir, 'key.pem'))}`;
  return [
    `Gateway: ${url}  (CA: ${world.caUrl}, metrics: http://${world.gateway.admin ? `127.0.0.1:${world.gateway.admin.port}` : '-'}/metrics)`,
    '',
    '1. No certificate: refused, and told why',
    `   curl ${cacert} ${url}/`,
    '   → 400 client certificate required',
    '',
    `2. A device that is not on the allowlist (${UNLISTED_DEVICE})`,
    `   curl ${cacert} ${as(world.dirs.unlisted)} ${url}/`,
    `   → 403 ${DENY_MESSAGE}`,
    '',
    `3. The allowlisted device (${ALLOWED_DEVICE})`,
    `   curl ${cacert} ${as(world.dirs.allowed)} ${url}/`,
    `   → 200 Welcome ${ALLOWED_DEVICE}. We've been expecting you.  (then the identity headers the app received)`,
    '',
    '4. The allowlisted device forging identity headers',
    `   curl ${cacert} ${as(world.dirs.allowed)} -H 'X-Client-Name: admin' -H 'X-Client-Role: admin' ${url}/`,
    `   → 200, and the app sees X-Client-Name: ${ALLOWED_DEVICE}: the forged values never reach it`,
    '',
    `5. The allowlisted device's secrets, delivered to its identity by its agent (role ${DEMO_SECRET.grant.slice(5)}, mode 0400)`,
    `   ls -l ${rel(join(world.dirs.allowed, 'secrets'))}/`,
    `   cat ${rel(join(world.dirs.allowed, 'secrets', DEMO_SECRET.name))}`,
    `   → ${DEMO_SECRET.value.trim().split('\n').join(' ')}`,
    '',
    `6. The allowlisted device on /reports/, whose rule requires a posture score of ${REPORTS_MIN_SCORE}: its agent reported a sample system with no firewall`,
    `   curl ${cacert} ${as(world.dirs.allowed)} ${url}/reports/q3`,
    `   → 403 … posture score 83 is below ${REPORTS_MIN_SCORE}; failing: firewall`,
    `   ${cli} fleet posture --dir ${rel(world.dirs.ca)}      (also on ${world.caUrl}/dashboard/fleet, with the admin identity: docs/dashboard.md)`,
    '',
    '7. Revoke the allowlisted device and watch it lose access within seconds',
    `   ${cli} cert revoke --ca ${world.caUrl} --identity ${rel(join(world.dirs.ca, 'admin'))} $(${cli} agent whoami --dir ${rel(world.dirs.allowed)} --json | node -pe 'JSON.parse(require("fs").readFileSync(0)).serial')`,
    `   curl ${cacert} ${as(world.dirs.allowed)} ${url}/`,
    '   → 403 client certificate refused (… revoked …)',
    '',
    'Certificates are short-lived here; the agents renew them at about two thirds of their lifetime: watch the agent.cert_renewed and gateway.reloaded log lines.',
  ].join('\n');
}
