import { PeerdockError } from './errors.js';
import { MAX_CONTROL_MESSAGE_CHARS, messageSchema, type Message } from './messages.js';
import { describeZodError } from './zod-errors.js';

/**
 * Data-channel framing. Text frames are JSON control messages; binary frames are file chunks:
 * a 4-byte big-endian stream id followed by the bytes. A frame is at most 64 KiB, well under
 * Chromium's 256 KiB message limit.
 */
export const MAX_FRAME_BYTES = 64 * 1024;
export const CHUNK_HEADER_BYTES = 4;
export const MAX_CHUNK_BYTES = MAX_FRAME_BYTES - CHUNK_HEADER_BYTES;

export function encodeChunk(stream: number, data: Uint8Array): Uint8Array {
  if (data.byteLength > MAX_CHUNK_BYTES) throw new RangeError(`chunk of ${data.byteLength} bytes exceeds ${MAX_CHUNK_BYTES}`);
  const frame = new Uint8Array(CHUNK_HEADER_BYTES + data.byteLength);
  new DataView(frame.buffer).setUint32(0, stream);
  frame.set(data, CHUNK_HEADER_BYTES);
  return frame;
}

export function decodeChunk(frame: Uint8Array): { stream: number; data: Uint8Array } {
  if (frame.byteLength < CHUNK_HEADER_BYTES || frame.byteLength > MAX_FRAME_BYTES) {
    throw new PeerdockError('ERR_BAD_MESSAGE', `binary frame of ${frame.byteLength} bytes is not a valid chunk`);
  }
  const stream = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0);
  return { stream, data: frame.subarray(CHUNK_HEADER_BYTES) };
}

export function encodeMessage(message: Message): string {
  return JSON.stringify(message);
}

/** Parses a text frame; malformed or unknown messages throw ERR_BAD_MESSAGE with the reason. */
export function decodeMessage(text: string): Message {
  if (text.length > MAX_CONTROL_MESSAGE_CHARS) {
    throw new PeerdockError('ERR_BAD_MESSAGE', `control message of ${text.length} characters is too long`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PeerdockError('ERR_BAD_MESSAGE', 'control message is not JSON');
  }
  const parsed = messageSchema.safeParse(value);
  if (!parsed.success) {
    const type = typeof value === 'object' && value !== null && 't' in value ? String((value as { t: unknown }).t) : '?';
    throw new PeerdockError('ERR_BAD_MESSAGE', `control message "${type}" is malformed: ${describeZodError(parsed.error)}`);
  }
  return parsed.data;
}
