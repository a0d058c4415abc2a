/**
 * How the body of an inbound request is framed, decided once from what Node's parser accepted,
 * so the gateway can write one unambiguous framing for the upstream hop. Node's llhttp already
 * refuses Content-Length together with Transfer-Encoding, duplicate or malformed lengths and
 * bad chunk syntax; this is the second line, and the decision the forwarder acts on. Anything
 * two parsers could read differently is refused and the connection closed (RFC 9112 §6.3).
 */
export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  /** Length unknown: the upstream hop is written chunked. */
  | { kind: 'chunked' };

export type FramingRefusal = { ok: false; reason: 'FRAMING_INVALID' | 'TRANSFER_CODING_UNSUPPORTED'; message: string };

const DIGITS = /^[0-9]{1,15}$/;

/** HTTP/1.x request: `rawHeaders` as Node parsed them. */
export function framingOfHttp1(
  httpVersion: string,
  rawHeaders: readonly string[],
): { ok: true; framing: BodyFraming } | FramingRefusal {
  const lengths: string[] = [];
  const codings: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 14 && name.toLowerCase() === 'content-length') lengths.push(rawHeaders[i + 1]!);
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') codings.push(rawHeaders[i + 1]!);
  }
  if (codings.length > 0) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
    if (httpVersion !== '1.1') return refuse('FRAMING_INVALID', 'Transfer-Encoding in an HTTP/1.0 request');
    // RFC 9112 §6.3 item 3: both present is a smuggling attempt, whatever either says.
    if (lengths.length > 0) return refuse('FRAMING_INVALID', 'both Content-Length and Transfer-Encoding');
    const list = codings
      .join(',')
      .split(',')
      .map((c) => c.trim().toLowerCase());
    if (list.length !== 1 || list[0] !== 'chunked') {
      // RFC 9112 §6.1: chunked must be last, exactly once; other codings are not decoded here.
      if (list[list.length - 1] !== 'chunked' || list.filter((c) => c === 'chunked').length !== 1)
        return refuse(
          'FRAMING_INVALID',
          `Transfer-Encoding "${codings.join(', ').slice(0, 100)}" does not end in a single chunked`,
        );
      return refuse(
        'TRANSFER_CODING_UNSUPPORTED',
        `Transfer-Encoding "${codings.join(', ').slice(0, 100)}" is not supported; send the body with Content-Length or plain chunked`,
      );
    }
    return { ok: true, framing: { kind: 'chunked' } };
  }
  return framingOfLength(lengths);
}

/** HTTP/2 request: no Transfer-Encoding (RFC 9113 §8.2.2); the body is whatever DATA frames follow. */
export function framingOfHttp2(
  rawHeaders: readonly string[],
  endStream: boolean,
): { ok: true; framing: BodyFraming } | FramingRefusal {
  const lengths: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name === 'transfer-encoding')
      return refuse('FRAMING_INVALID', 'transfer-encoding in an HTTP/2 request (RFC 9113 §8.2.2)');
    if (name === 'content-length') lengths.push(rawHeaders[i + 1]!);
  }
  const byLength = framingOfLength(lengths);
  if (!byLength.ok) return byLength;
  if (endStream) {
    if (byLength.framing.kind === 'length' && byLength.framing.length > 0)
      return refuse('FRAMING_INVALID', 'content-length on a stream that has no body');
    return { ok: true, framing: { kind: 'none' } };
  }
  // nghttp2 resets a stream whose DATA does not add up to its content-length (RFC 9113 §8.1.1).
  return { ok: true, framing: byLength.framing.kind === 'none' ? { kind: 'chunked' } : byLength.framing };
}

function framingOfLength(lengths: readonly string[]): { ok: true; framing: BodyFraming } | FramingRefusal {
  if (lengths.length === 0) return { ok: true, framing: { kind: 'none' } };
  // RFC 9110 §8.6 lets a recipient merge identical copies; refusing them is simpler and safe.
  if (lengths.length > 1) return refuse('FRAMING_INVALID', 'more than one Content-Length');
  const text = lengths[0]!;
  if (!DIGITS.test(text)) return refuse('FRAMING_INVALID', `Content-Length "${text.slice(0, 40)}" is not a number`);
  return { ok: true, framing: { kind: 'length', length: Number(text) } };
}

function refuse(reason: FramingRefusal['reason'], detail: string): FramingRefusal {
  const status = reason === 'TRANSFER_CODING_UNSUPPORTED' ? '501 Not Implemented' : '400 Bad Request';
  return { ok: false, reason, message: `${status}: ${detail}` };
}

/** True when the body must reach the upstream (an explicit `Content-Length: 0` on POST is still written). */
export function hasBody(framing: BodyFraming): boolean {
  return framing.kind === 'chunked' || (framing.kind === 'length' && framing.length > 0);
}
