import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { fromBase64, toBase64 } from './encoding.js';
import { ENVELOPE_MAX_AGE_MS, openEnvelope, sealEnvelope, type Envelope, type EnvelopeRoute } from './envelope.js';
import { PeerdockError, type ErrorCode } from './errors.js';
import { deriveQueueKeys, generateQueue, type QueueKeys } from './queue-keys.js';

function isError(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof PeerdockError, `expected a PeerdockError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

const payload = { session: 'a'.repeat(32), signal: { type: 'offer', sdp: 'v=0\r\na=fingerprint:sha-256 AB:CD\r\n' } };

describe('queue keys', () => {
  test('the same queue gives the same room id, another queue another one', async () => {
    const [a1, a2, b] = await Promise.all([
      deriveQueueKeys('queue-alpha-secret'),
      deriveQueueKeys('queue-alpha-secret'),
      deriveQueueKeys('queue-bravo-secret'),
    ]);
    assert.match(a1.roomId, /^[0-9a-f]{32}$/);
    assert.equal(a1.roomId, a2.roomId);
    assert.notEqual(a1.roomId, b.roomId);
    assert.ok(!a1.roomId.includes('alpha'));
  });

  test('the signal key is not extractable', async () => {
    const { signalKey } = await deriveQueueKeys('queue-alpha-secret');
    assert.equal(signalKey.extractable, false);
    await assert.rejects(crypto.subtle.exportKey('raw', signalKey));
  });

  test('a short queue is refused with ERR_INVALID_FLAG', async () => {
    await assert.rejects(deriveQueueKeys('short'), isError('ERR_INVALID_FLAG'));
    await assert.rejects(deriveQueueKeys('   short    '), isError('ERR_INVALID_FLAG'));
  });

  test('generated queues are long, URL-safe and different each time', () => {
    const a = generateQueue();
    const b = generateQueue();
    assert.match(a, /^q-[0-9a-f]{36}$/);
    assert.notEqual(a, b);
  });
});

describe('sealed envelopes', () => {
  let alpha: QueueKeys;
  let alphaAgain: QueueKeys;
  let bravo: QueueKeys;
  let route: EnvelopeRoute;

  before(async () => {
    [alpha, alphaAgain, bravo] = await Promise.all([
      deriveQueueKeys('queue-alpha-secret'),
      deriveQueueKeys('queue-alpha-secret'),
      deriveQueueKeys('queue-bravo-secret'),
    ]);
    route = { roomId: alpha.roomId, from: 'socket-from', to: 'socket-to' };
  });

  test('round-trips between two peers that derived the keys separately from the same queue', async () => {
    const envelope = await sealEnvelope(alpha.signalKey, route, payload);
    assert.deepEqual(await openEnvelope(alphaAgain.signalKey, { ...route }, envelope), payload);
  });

  test('is opaque: the payload does not appear in it and two seals of the same payload differ', async () => {
    const one = await sealEnvelope(alpha.signalKey, route, payload);
    const two = await sealEnvelope(alpha.signalKey, route, payload);
    assert.notEqual(one.iv, two.iv);
    assert.notEqual(one.data, two.data);
    const text = JSON.stringify(one) + Buffer.from(fromBase64(one.data)).toString('latin1');
    for (const secret of ['offer', 'fingerprint', 'v=0', 'session', 'queue-alpha-secret']) assert.ok(!text.includes(secret), secret);
  });

  test('opening with another queue\'s key is ERR_UNAUTHENTICATED', async () => {
    const envelope = await sealEnvelope(bravo.signalKey, route, payload);
    await assert.rejects(openEnvelope(alpha.signalKey, route, envelope), isError('ERR_UNAUTHENTICATED'));
  });

  test('a tampered ciphertext or iv is ERR_UNAUTHENTICATED', async () => {
    const envelope = await sealEnvelope(alpha.signalKey, route, payload);
    const bytes = fromBase64(envelope.data);
    for (const index of [0, Math.floor(bytes.length / 2), bytes.length - 1]) {
      const flipped = bytes.slice();
      flipped[index]! ^= 0x01;
      await assert.rejects(openEnvelope(alpha.signalKey, route, { ...envelope, data: toBase64(flipped) }), isError('ERR_UNAUTHENTICATED'));
    }
    const iv = fromBase64(envelope.iv);
    iv[0]! ^= 0x80;
    await assert.rejects(openEnvelope(alpha.signalKey, route, { ...envelope, iv: toBase64(iv) }), isError('ERR_UNAUTHENTICATED'));
    const truncated = toBase64(bytes.subarray(0, bytes.length - 1));
    await assert.rejects(openEnvelope(alpha.signalKey, route, { ...envelope, data: truncated }), isError('ERR_UNAUTHENTICATED'));
    // the untouched envelope still opens: the failures above are due to the changes
    assert.deepEqual(await openEnvelope(alpha.signalKey, route, envelope), payload);
  });

  test('a misrouted envelope (other sender, recipient or room) is ERR_UNAUTHENTICATED', async () => {
    const envelope = await sealEnvelope(alpha.signalKey, route, payload);
    for (const wrong of [
      { ...route, from: 'someone-else' },
      { ...route, to: 'someone-else' },
      { roomId: route.roomId, from: route.to, to: route.from },
      { ...route, roomId: bravo.roomId },
    ]) {
      await assert.rejects(openEnvelope(alpha.signalKey, wrong, envelope), isError('ERR_UNAUTHENTICATED'), JSON.stringify(wrong));
    }
  });

  test('a stale envelope (or one from a clock far ahead) is ERR_UNAUTHENTICATED', async () => {
    const envelope = await sealEnvelope(alpha.signalKey, route, payload);
    const tenMinutes = 10 * 60_000;
    await assert.rejects(openEnvelope(alpha.signalKey, route, envelope, Date.now() + tenMinutes), isError('ERR_UNAUTHENTICATED'));
    await assert.rejects(openEnvelope(alpha.signalKey, route, envelope, Date.now() - tenMinutes), isError('ERR_UNAUTHENTICATED'));
    // within the allowed skew it opens
    assert.deepEqual(await openEnvelope(alpha.signalKey, route, envelope, Date.now() + ENVELOPE_MAX_AGE_MS / 2), payload);
  });

  test('a malformed envelope is ERR_BAD_MESSAGE', async () => {
    const good = await sealEnvelope(alpha.signalKey, route, payload);
    const malformed: unknown[] = [
      undefined,
      null,
      'envelope',
      42,
      {},
      { iv: good.iv },
      { data: good.data },
      { ...good, extra: 1 },
      { ...good, iv: 'short' },
      { ...good, iv: '!!!!!!!!!!!!!!!!' },
      { ...good, data: 'not base64 ***' },
      { ...good, data: 'A'.repeat(48 * 1024 + 4) },
      { iv: 1, data: 2 },
    ];
    for (const value of malformed) {
      await assert.rejects(openEnvelope(alpha.signalKey, route, value), isError('ERR_BAD_MESSAGE'), JSON.stringify(value)?.slice(0, 60));
    }
  });

  test('the envelope schema accepts what sealEnvelope makes for a large payload', async () => {
    const big = { session: 'b'.repeat(32), signal: { type: 'offer', sdp: 'a=candidate:x\r\n'.repeat(1500) } };
    const envelope: Envelope = await sealEnvelope(alpha.signalKey, route, big);
    assert.deepEqual(await openEnvelope(alpha.signalKey, route, envelope), big);
  });
});
