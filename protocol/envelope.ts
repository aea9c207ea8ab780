import { z } from 'zod';
import { fromBase64, toBase64, utf8Decode, utf8Encode } from './encoding.js';
import { PeerdockError } from './errors.js';

/** What the signaling server relays: opaque to it, authenticated for the peers. */
export const envelopeSchema = z.strictObject({
  iv: z.string().regex(/^[A-Za-z0-9+/]{16}$/),
  data: z.string().max(48 * 1024).regex(/^[A-Za-z0-9+/]*={0,2}$/),
});
export type Envelope = z.infer<typeof envelopeSchema>;

/**
 * Who sent it to whom, bound into the ciphertext as associated data: a signal replayed by the
 * server from another socket or to another recipient fails to open.
 */
export interface EnvelopeRoute {
  roomId: string;
  from: string;
  to: string;
}

/** Signals older than this are refused, so a recorded envelope cannot be replayed later. */
export const ENVELOPE_MAX_AGE_MS = 5 * 60_000;

function associatedData(route: EnvelopeRoute): Uint8Array<ArrayBuffer> {
  return utf8Encode(`peerdock/v1|${route.roomId}|${route.from}|${route.to}`) as Uint8Array<ArrayBuffer>;
}

export async function sealEnvelope(key: CryptoKey, route: EnvelopeRoute, payload: unknown): Promise<Envelope> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plaintext = utf8Encode(JSON.stringify({ ts: Date.now(), payload })) as Uint8Array<ArrayBuffer>;
  const ciphertext = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: associatedData(route) }, key, plaintext);
  return { iv: toBase64(iv), data: toBase64(new Uint8Array(ciphertext)) };
}

/** Opens an envelope or throws ERR_UNAUTHENTICATED: wrong queue, tampered, misrouted or stale. */
export async function openEnvelope(key: CryptoKey, route: EnvelopeRoute, envelope: unknown, now = Date.now()): Promise<unknown> {
  const parsed = envelopeSchema.safeParse(envelope);
  if (!parsed.success) throw new PeerdockError('ERR_BAD_MESSAGE', 'signal envelope is malformed');
  let plaintext: ArrayBuffer;
  try {
    plaintext = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: fromBase64(parsed.data.iv) as Uint8Array<ArrayBuffer>, additionalData: associatedData(route) },
      key,
      fromBase64(parsed.data.data) as Uint8Array<ArrayBuffer>,
    );
  } catch {
    throw new PeerdockError('ERR_UNAUTHENTICATED', 'a signal did not authenticate: the sender does not know this queue, or it was altered');
  }
  const body = z.object({ ts: z.number(), payload: z.unknown() }).safeParse(JSON.parse(utf8Decode(new Uint8Array(plaintext))));
  if (!body.success) throw new PeerdockError('ERR_BAD_MESSAGE', 'signal envelope body is malformed');
  if (Math.abs(now - body.data.ts) > ENVELOPE_MAX_AGE_MS) {
    throw new PeerdockError('ERR_UNAUTHENTICATED', 'a signal was too old (replayed, or the clocks differ by more than 5 minutes)');
  }
  return body.data.payload;
}
