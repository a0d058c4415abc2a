/** Request IDs for the access log and `x-request-id`: unique across processes (a random prefix) without a random draw per request. */
import { randomBytes } from 'node:crypto';

const REQUEST_ID_PREFIX = randomBytes(4).toString('hex');
let requestCounter = 0;

export function nextRequestId(): string {
  requestCounter = (requestCounter + 1) % 0x1_0000_0000;
  return `${REQUEST_ID_PREFIX}${requestCounter.toString(16).padStart(8, '0')}`;
}
