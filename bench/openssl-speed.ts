/** The peer ceiling: `openssl speed -seconds 3 ecdsap256`, one core, run in the same bench run. */
import { spawnSync } from 'node:child_process';

export interface OpensslSpeed {
  version: string;
  command: string;
  signPerS: number;
  verifyPerS: number;
  line: string;
}

export function runOpensslSpeed(seconds = 3): OpensslSpeed {
  const args = ['speed', '-seconds', String(seconds), 'ecdsap256'];
  const out = spawnSync('openssl', args, { encoding: 'utf8', timeout: (seconds * 2 + 30) * 1000 });
  if (out.error) throw new Error(`openssl speed failed to start: ${out.error.message} (apt-get install -y openssl)`);
  // " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  40690.0  14350.0"
  const line = out.stdout.split('\n').find((l) => /\(nistp256\)/.test(l)) ?? '';
  const m = /\(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/.exec(line);
  if (!m) throw new Error(`cannot read sign/s from openssl speed output:\n${out.stdout}\n${out.stderr}`);
  const version = spawnSync('openssl', ['version'], { encoding: 'utf8' }).stdout.trim();
  return {
    version,
    command: `openssl ${args.join(' ')}`,
    signPerS: Number(m[1]),
    verifyPerS: Number(m[2]),
    line: line.trim(),
  };
}
