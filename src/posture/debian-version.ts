/**
 * Debian version comparison (Debian Policy §5.6.12), as `dpkg --compare-versions` decides it:
 * [epoch:]upstream[-revision], the epoch compared as a number, then upstream and revision by
 * dpkg's verrevcmp: alternating runs of non-digits (letters before other characters, `~` before
 * everything, even the end) and digits (compared as numbers). The CVE audit matches installed
 * packages against advisories' fixed versions with it; test/posture-debian-version.test.ts
 * checks it against dpkg itself.
 */
import { GatehouseError } from '../errors/errors.js';

export interface DebianVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

const UPSTREAM_RE = /^[0-9A-Za-z.+~:-]+$/;
const REVISION_RE = /^[0-9A-Za-z.+~]+$/;

export function parseDebianVersion(text: string): DebianVersion {
  const version = text.trim();
  const bad = (why: string) =>
    new GatehouseError('GH_BODY_INVALID', `"${text.slice(0, 80)}" is not a Debian version: ${why}`);
  if (version === '' || /\s/.test(version)) throw bad('empty or with spaces');
  const colon = version.indexOf(':');
  let epoch = 0;
  let rest = version;
  if (colon !== -1) {
    const epochText = version.slice(0, colon);
    if (!/^\d{1,9}$/.test(epochText)) throw bad('the epoch must be a number');
    epoch = Number(epochText);
    rest = version.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  const upstream = dash === -1 ? rest : rest.slice(0, dash);
  const revision = dash === -1 ? '' : rest.slice(dash + 1);
  if (upstream === '' || !UPSTREAM_RE.test(upstream))
    throw bad('the upstream version is empty or has characters outside A-Z a-z 0-9 . + ~ : -');
  if (dash !== -1 && (revision === '' || !REVISION_RE.test(revision)))
    throw bad('the revision is empty or has characters outside A-Z a-z 0-9 . + ~');
  return { epoch, upstream, revision };
}

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareDebianVersions(a: string | DebianVersion, b: string | DebianVersion): number {
  const va = typeof a === 'string' ? parseDebianVersion(a) : a;
  const vb = typeof b === 'string' ? parseDebianVersion(b) : b;
  if (va.epoch !== vb.epoch) return va.epoch - vb.epoch;
  return verrevcmp(va.upstream, vb.upstream) || verrevcmp(va.revision, vb.revision);
}

const isDigit = (c: number) => c >= 48 && c <= 57;
const isAlpha = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/** dpkg's order(): digits and the end 0, `~` before all, letters by code, the rest after letters. */
function order(c: number): number {
  if (c === 0 || isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === 126) return -1; // ~
  return c + 256;
}

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const at = (s: string, k: number) => (k < s.length ? s.charCodeAt(k) : 0);
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(at(a, i))) || (j < b.length && !isDigit(at(b, j)))) {
      const diff = order(at(a, i)) - order(at(b, j));
      if (diff !== 0) return diff;
      i++;
      j++;
    }
    while (at(a, i) === 48) i++;
    while (at(b, j) === 48) j++;
    let firstDiff = 0;
    while (isDigit(at(a, i)) && isDigit(at(b, j))) {
      if (firstDiff === 0) firstDiff = at(a, i) - at(b, j);
      i++;
      j++;
    }
    if (isDigit(at(a, i))) return 1;
    if (isDigit(at(b, j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}
