/** Schema pieces every config file shares (the CA's gatehouse.yaml and the gateway's config). */
import { z } from 'zod';
import { parseDurationMs } from './duration.js';

/** A duration string (`500ms`, `90s`, `15m`, `24h`, `7d`) within [min, max], read as milliseconds. */
export const durationSchema = (min: string, max: string) =>
  z.string().transform((text, ctx) => {
    const ms = parseDurationMs(text);
    if (ms === null) ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration like 500ms, 90s, 15m, 24h or 7d` });
    else if (ms < parseDurationMs(min)! || ms > parseDurationMs(max)!) ctx.addIssue({ code: 'custom', message: `${text} is outside ${min}–${max}` });
    return ms ?? 0;
  });

export const hostPortSchema = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:8443');
