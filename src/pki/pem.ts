/** PEM (RFC 7468) encoding and decoding. */
export interface PemBlock {
  label: string;
  der: Buffer;
}

export function toPem(label: string, der: Buffer | Uint8Array | ArrayBuffer): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block in `text`, in order. Text outside blocks is ignored, as OpenSSL does. */
export function decodePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const body = match[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) continue;
    blocks.push({ label: match[1]!, der: Buffer.from(body, 'base64') });
  }
  return blocks;
}

/** DER of every block with one of `labels`. */
export function decodePem(text: string, ...labels: string[]): Buffer[] {
  return decodePemBlocks(text)
    .filter((b) => labels.includes(b.label))
    .map((b) => b.der);
}

export function looksLikePem(input: string | Buffer): boolean {
  const head = typeof input === 'string' ? input.slice(0, 200) : input.subarray(0, 200).toString('latin1');
  return head.includes('-----BEGIN ');
}
