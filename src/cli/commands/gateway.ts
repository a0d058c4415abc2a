import { GatehouseError } from '../../errors/errors.js';
import { createLogger } from '../../log/logger.js';
import { str, flag, type CommandSpec } from '../command.js';

const PRESETS = ['default', 'nginx', 'envoy', 'traefik'] as const;

export const gatewayCommand: CommandSpec = {
  path: ['gateway'],
  summary: 'Run the mTLS gateway: require a client certificate, decide by identity, forward to the app with identity headers it can trust.',
  options: {
    listen: { type: 'string', value: 'HOST:PORT', required: true, description: 'Address to listen on, e.g. 127.0.0.1:8443' },
    cert: { type: 'string', value: 'FILE', required: true, description: "The gateway's certificate chain (PEM), e.g. an agent's cert.pem" },
    key: { type: 'string', value: 'FILE', required: true, description: "The gateway's private key (PEM)" },
    'client-ca': { type: 'string', value: 'FILE', required: true, description: 'CA bundle client certificates must chain to (e.g. ca.pem plus the intermediate)' },
    upstream: { type: 'string', value: 'URL', required: true, description: 'The app, e.g. http://127.0.0.1:9000 (loopback unless --unsafe-allow-non-local-upstream)' },
    policy: { type: 'string', value: 'FILE', description: 'Policy (JSON or YAML). Without it any verified client is allowed, with a warning' },
    headers: { type: 'string', value: 'PRESET', description: `Identity headers for the app: ${PRESETS.join(', ')} (default default)` },
    'unsafe-allow-non-local-upstream': { type: 'boolean', description: 'Allow an upstream not on loopback (the app must accept connections only from the gateway)' },
  },
  notes: ['Logs one JSON line per request to stderr. Stops on SIGINT or SIGTERM after draining requests.'],
  async run(ctx) {
    const preset = str(ctx, 'headers') ?? 'default';
    if (!(PRESETS as readonly string[]).includes(preset)) throw new GatehouseError('GH_USAGE', `--headers must be one of ${PRESETS.join(', ')}`);
    const { splitHostPort } = await import('../../ca/server.js');
    const { startGateway } = await import('../../gateway/gateway.js');
    const { allowAllPolicy, loadPolicyFile } = await import('../../policy/index.js');
    const logger = createLogger();
    const policyFile = str(ctx, 'policy');
    const policy = policyFile ? loadPolicyFile(policyFile) : allowAllPolicy();
    if (!policyFile) logger.warn('gateway.no_policy', { effect: 'any client certificate that verifies against --client-ca is allowed', fix: 'pass --policy FILE' });
    const { host, port } = splitHostPort(str(ctx, 'listen')!);
    const gateway = await startGateway({
      host, port, certFile: str(ctx, 'cert')!, keyFile: str(ctx, 'key')!, clientCaFile: str(ctx, 'client-ca')!, upstream: str(ctx, 'upstream')!,
      policy, headerPreset: preset as (typeof PRESETS)[number], logger, unsafeAllowNonLocalUpstream: flag(ctx, 'unsafe-allow-non-local-upstream'),
    });
    ctx.err(`Gatehouse gateway listening on https://${host}:${gateway.port} → ${str(ctx, 'upstream')}\n`);
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    await gateway.close();
  },
};
