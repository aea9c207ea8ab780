import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { PeerdockError } from './errors.js';
import { CHUNK_HEADER_BYTES, decodeChunk, decodeMessage, encodeChunk, encodeMessage, MAX_CHUNK_BYTES, MAX_FRAME_BYTES } from './framing.js';
import { MAX_CONTROL_MESSAGE_CHARS, type Message } from './messages.js';

const jobId = 'c'.repeat(64);
const sha = 'd'.repeat(64);

function badMessage(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof PeerdockError, `expected a PeerdockError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_BAD_MESSAGE');
    assert.match(error.message, pattern);
    return true;
  };
}

describe('binary chunks', () => {
  test('round-trip the stream id and the bytes', () => {
    for (const [stream, size] of [
      [0, 0],
      [1, 1],
      [7, 1000],
      [0xffffffff, MAX_CHUNK_BYTES],
      [0x01020304, 12345],
    ] as const) {
      const data = new Uint8Array(randomBytes(size));
      const frame = encodeChunk(stream, data);
      assert.equal(frame.byteLength, CHUNK_HEADER_BYTES + size);
      const decoded = decodeChunk(frame);
      assert.equal(decoded.stream, stream);
      assert.deepEqual(decoded.data, data);
    }
  });

  test('the header is a 4-byte big-endian stream id', () => {
    assert.deepEqual([...encodeChunk(0x01020304, new Uint8Array([9]))], [1, 2, 3, 4, 9]);
  });

  test('decodes a frame that is a view into a larger buffer', () => {
    const backing = new Uint8Array(100).fill(0xee);
    backing.set(encodeChunk(5, new Uint8Array([1, 2, 3])), 10);
    const decoded = decodeChunk(backing.subarray(10, 17));
    assert.equal(decoded.stream, 5);
    assert.deepEqual([...decoded.data], [1, 2, 3]);
  });

  test('a chunk over the limit is refused when encoding', () => {
    assert.throws(() => encodeChunk(1, new Uint8Array(MAX_CHUNK_BYTES + 1)), RangeError);
    assert.ok(MAX_FRAME_BYTES <= 256 * 1024, 'frames stay under Chromium\'s per-message limit');
  });

  test('an oversize or truncated frame is ERR_BAD_MESSAGE when decoding', () => {
    assert.throws(() => decodeChunk(new Uint8Array(MAX_FRAME_BYTES + 1)), badMessage(new RegExp(`${MAX_FRAME_BYTES + 1} bytes`)));
    assert.throws(() => decodeChunk(new Uint8Array(3)), badMessage(/3 bytes is not a valid chunk/));
    assert.throws(() => decodeChunk(new Uint8Array(0)), badMessage(/0 bytes/));
  });
});

describe('control messages', () => {
  test('round-trip through encodeMessage and decodeMessage', () => {
    const messages: Message[] = [
      { t: 'submit', v: 1, jobId, definition: { image: 'alpine', command: ['true'], inputs: { 'a.txt': { sha256: sha, size: 3 } } } },
      { t: 'accepted', jobId, cached: false, missing: [{ sha256: sha, offset: 0 }] },
      { t: 'state', jobId, state: 'queued', position: 2 },
      { t: 'log', jobId, stream: 'stderr', data: 'oops\n' },
      { t: 'file-start', stream: 3, sha256: sha, size: 10, jobId, path: 'out/x.txt' },
      { t: 'file-start', stream: 4, sha256: sha, size: 10, offset: 4 },
      { t: 'ack', stream: 3, offset: 10 },
      { t: 'file-error', stream: 3, code: 'ERR_HASH_MISMATCH', message: 'corrupted' },
      {
        t: 'result',
        result: { jobId, state: 'finished', exitCode: 0, outputs: [{ path: 'x.txt', size: 1, sha256: sha }], durationMs: 12 },
      },
    ];
    for (const message of messages) assert.deepEqual(decodeMessage(encodeMessage(message)), message);
  });

  test('non-JSON is ERR_BAD_MESSAGE "not JSON"', () => {
    for (const text of ['', 'hello', '{"t":"ack"', '\u0000']) {
      assert.throws(() => decodeMessage(text), badMessage(/^control message is not JSON$/), JSON.stringify(text));
    }
  });

  test('an unknown type is ERR_BAD_MESSAGE naming the type', () => {
    assert.throws(() => decodeMessage('{"t":"launch-missiles"}'), badMessage(/control message "launch-missiles" is malformed: t:/));
    assert.throws(() => decodeMessage('{"type":"ack"}'), badMessage(/control message "\?" is malformed/));
    assert.throws(() => decodeMessage('[1,2]'), badMessage(/malformed/));
    assert.throws(() => decodeMessage('null'), badMessage(/control message "\?" is malformed/));
  });

  test('missing or wrong fields are ERR_BAD_MESSAGE naming the field', () => {
    assert.throws(() => decodeMessage('{"t":"ack","stream":1}'), badMessage(/control message "ack" is malformed: offset:/));
    assert.throws(() => decodeMessage('{"t":"ack","stream":-1,"offset":0}'), badMessage(/"ack" is malformed: stream:/));
    assert.throws(
      () => decodeMessage(JSON.stringify({ t: 'cancel', jobId: 'not-a-hash' })),
      badMessage(/"cancel" is malformed: jobId: must be a lowercase hex sha256/),
    );
    assert.throws(
      () => decodeMessage(JSON.stringify({ t: 'file-start', stream: 1, sha256: sha, size: 1, path: '../etc/passwd' })),
      badMessage(/"file-start" is malformed: path: .*climbs out/),
    );
    assert.throws(
      () => decodeMessage(JSON.stringify({ t: 'error', code: 'ERR_MADE_UP', message: 'x' })),
      badMessage(/"error" is malformed: code:/),
    );
  });

  test('unknown extra fields are refused', () => {
    assert.throws(() => decodeMessage(JSON.stringify({ t: 'ack', stream: 1, offset: 0, admin: true })), badMessage(/"ack" is malformed/));
  });

  test('a message over the size limit is refused before parsing', () => {
    const text = JSON.stringify({ t: 'log', jobId, stream: 'stdout', data: 'x'.repeat(MAX_CONTROL_MESSAGE_CHARS) });
    assert.throws(() => decodeMessage(text), badMessage(/too long/));
  });
});
