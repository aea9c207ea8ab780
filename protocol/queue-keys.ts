import { toHex, utf8Encode } from './encoding.js';
import { PeerdockError } from './errors.js';

export interface QueueKeys {
  /** What the signaling server routes on. Reveals nothing about the queue. */
  roomId: string;
  /** AES-GCM key that peers seal their signals with; never leaves the peers. */
  signalKey: CryptoKey;
}

export const MIN_QUEUE_LENGTH = 8;
const PBKDF2_ITERATIONS = 100_000;
const PBKDF2_SALT = utf8Encode('peerdock/queue/v1');

/**
 * Derives the room id and the signal key from the queue secret. PBKDF2 makes guessing a queue from
 * its room id slow; HKDF then splits the master secret into independent values.
 */
export async function deriveQueueKeys(queue: string): Promise<QueueKeys> {
  assertQueue(queue);
  const subtle = crypto.subtle;
  const password = await subtle.importKey('raw', utf8Encode(queue) as Uint8Array<ArrayBuffer>, 'PBKDF2', false, ['deriveBits']);
  const master = await subtle.deriveBits(
    { name: 'PBKDF2', hash: 'SHA-256', salt: PBKDF2_SALT as Uint8Array<ArrayBuffer>, iterations: PBKDF2_ITERATIONS },
    password,
    256,
  );
  const hkdfKey = await subtle.importKey('raw', master, 'HKDF', false, ['deriveBits', 'deriveKey']);
  const hkdf = (info: string) => ({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: utf8Encode(info) as Uint8Array<ArrayBuffer> });
  const roomBits = await subtle.deriveBits(hkdf('peerdock/room'), hkdfKey, 128);
  const signalKey = await subtle.deriveKey(hkdf('peerdock/signal'), hkdfKey, { name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
    'decrypt',
  ]);
  return { roomId: toHex(new Uint8Array(roomBits)), signalKey };
}

export function assertQueue(queue: string): void {
  if (typeof queue !== 'string' || queue.trim().length < MIN_QUEUE_LENGTH) {
    throw new PeerdockError(
      'ERR_INVALID_FLAG',
      `the queue must be a secret of at least ${MIN_QUEUE_LENGTH} characters (anyone who knows it can use your workers); generate one with: peerdock queue new`,
    );
  }
}

/** A long random queue name, safe to put in URLs. */
export function generateQueue(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return `q-${toHex(bytes)}`;
}
