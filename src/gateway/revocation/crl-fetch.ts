/**
 * Reading a CRL source's bytes: a file, or an http(s) URL. Nothing here trusts the content;
 * crl-acceptance.ts decides whether it may be used. Plain http:// is allowed because a CRL is
 * signed (RFC 5280 §4.2.1.13 distribution points are usually http); the size cap and the
 * deadline keep a broken or hostile server from holding memory or a refresh forever.
 */
import { readFile, stat } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';

export interface FetchLimits {
  /** Trust anchors (PEM) for https:// sources; Node's default CAs when absent. */
  ca?: string;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

export async function readCrlFile(path: string, maxBytes: number): Promise<Buffer> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a regular file');
    if (info.size > maxBytes) throw new Error(`${info.size} bytes is more than the ${maxBytes}-byte limit`);
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot read the file: ${code ?? (err as Error).message}`, { cause: err });
  }
}

/** GET `url`; only a 200 answer's body is returned. No redirects are followed. */
export function fetchCrlBytes(url: URL, limits: FetchLimits): Promise<Buffer> {
  const get = url.protocol === 'https:' ? httpsGet : httpGet;
  return new Promise<Buffer>((resolve, reject) => {
    const fail = (why: string, cause?: unknown) => reject(new Error(why, cause === undefined ? undefined : { cause }));
    const req = get(
      url,
      {
        agent: false, // one connection per refresh, nothing left open after close()
        headers: { accept: 'application/pkix-crl, application/x-pem-file;q=0.5' },
        ...(url.protocol === 'https:' && limits.ca ? { ca: limits.ca } : {}),
        ...(limits.signal ? { signal: limits.signal } : {}),
      },
      (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          res.resume();
          fail(`HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim());
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limits.maxBytes)
            req.destroy(new Error(`the answer is larger than the ${limits.maxBytes}-byte limit`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', (err) => fail(err.message, err));
      },
    );
    // A whole-request deadline: a server trickling bytes would defeat an idle timeout.
    const deadline = setTimeout(
      () => req.destroy(new Error(`no complete answer within ${limits.timeoutMs} ms`)),
      limits.timeoutMs,
    );
    deadline.unref();
    req.on('close', () => clearTimeout(deadline));
    req.on('error', (err: NodeJS.ErrnoException) =>
      fail(err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message, err),
    );
  });
}

/** A source as it may appear in logs and status: no userinfo, no query (either may carry a secret). */
export function displaySource(source: string): string {
  if (!/^https?:\/\//i.test(source)) return source;
  try {
    const url = new URL(source);
    return `${url.protocol}//${url.host}${url.pathname}${url.search ? '?…' : ''}`;
  } catch {
    return '[unparseable URL]';
  }
}
