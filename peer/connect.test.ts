import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup as nodeDatachannelCleanup } from 'node-datachannel';
import SimplePeer from 'simple-peer';
import { PeerdockError } from '../protocol/errors.js';
import { startSignalingServer, type SignalingServer } from '../signaling/server.js';
import { acceptPeers, dialPeer, type PeerSession } from './connect.js';
import { nodeWrtc, preferActiveDtls } from './node-wrtc.js';
import { SignalingClient } from './signaling-client.js';

/**
 * Dialing itself. After failed dials node-datachannel's cleanup() could deadlock, so the file
 * keeps its dials few; the dial failures themselves came from signals sent out of order (fixed).
 */
const QUEUE = 'queue-connect-test-0123456789';

let server: SignalingServer;
let worker: SignalingClient;
let client: SignalingClient;
let stopAccepting: () => void;
const accepted: PeerSession[] = [];

/**
 * simple-peer never clears its 5 s ICE-complete timer on destroy; unref it so that a destroyed
 * peer (even one inside a failed dialPeer) cannot hold the process open. See peer/link.test.ts.
 */
function unrefSimplePeerIceTimer(): void {
  const proto = SimplePeer.prototype as unknown as { _startIceCompleteTimeout(): void; _iceCompleteTimer?: NodeJS.Timeout | null };
  const start = proto._startIceCompleteTimeout;
  proto._startIceCompleteTimeout = function (this: typeof proto) {
    start.call(this);
    this._iceCompleteTimer?.unref();
  };
}
unrefSimplePeerIceTimer();

function release(peer: SimplePeer.Instance): void {
  peer.destroy();
}

before(async () => {
  server = await startSignalingServer({ port: 0, host: '127.0.0.1' });
  worker = await SignalingClient.connect({ url: server.url, queue: QUEUE, role: 'worker', workerId: 'w', capacity: { cores: 1, free: 1, queued: 0 } });
  client = await SignalingClient.connect({ url: server.url, queue: QUEUE, role: 'client' });
  stopAccepting = acceptPeers(worker, { wrtc: nodeWrtc(), connectTimeoutMs: 3000 }, (session) =>
    accepted.push(session),
  );
});

after(async () => {
  for (const session of accepted) release(session.peer);
  stopAccepting();
  worker.close();
  client.close();
  await server.close();
  try {
    nodeDatachannelCleanup();
  } catch (error) {
    console.error(`node-datachannel cleanup: ${(error as Error).message}`);
  }
});

describe('dialPeer and acceptPeers', { timeout: 30_000 }, () => {
  test('a dial connects both ends and tells each who the other is', async () => {
    let dialed: PeerSession | undefined;
    for (let attempt = 1; !dialed; attempt++) {
      // retried only for libdatachannel's rare DTLS race (see isDtlsRace in link.test.ts)
      dialed = await dialPeer(client, worker.id!, { wrtc: nodeWrtc() }).catch((error: unknown) => {
        if (attempt < 5 && String(error).includes('remote candidate without ICE transport')) return undefined;
        throw error;
      });
    }
    const session = dialed.session;
    assert.match(session, /^[0-9a-f]{32}$/);
    assert.equal(dialed.remoteSocketId, worker.id);
    const answered = await waitFor(() => accepted.find((entry) => entry.session === session));
    assert.equal(answered.remoteSocketId, client.id);
    const arrival = new Promise((resolve) => answered.link.onMessage(resolve));
    dialed.link.send({ t: 'cancel', jobId: 'a'.repeat(64) });
    assert.deepEqual(await arrival, { t: 'cancel', jobId: 'a'.repeat(64) });
    dialed.link.close();
    release(dialed.peer);
  });

  test('a dial to a socket id no worker has fails at once, from the server\'s refusal, not the deadline', async () => {
    await assert.rejects(
      dialPeer(client, 'no-such-socket', { wrtc: nodeWrtc(), connectTimeoutMs: 60_000 }),
      (error: unknown) => error instanceof PeerdockError && error.code === 'ERR_PEER_LOST' && /left the queue/.test(error.message),
    );
  });

  test('preferActiveDtls rewrites only an offer\'s setup role, without touching its input', () => {
    const offer = { type: 'offer', sdp: 'v=0\r\na=setup:actpass\r\nm=application\r\na=setup:actpass\r\n' };
    const rewritten = preferActiveDtls(offer);
    assert.equal(rewritten.sdp, 'v=0\r\na=setup:active\r\nm=application\r\na=setup:active\r\n');
    assert.equal(offer.sdp.includes('actpass'), true, 'the input was mutated');
    const answer = { type: 'answer', sdp: 'a=setup:actpass\r\n' };
    assert.equal(preferActiveDtls(answer), answer);
    const candidate = { type: 'candidate', candidate: { candidate: 'candidate:1 1 UDP 1 127.0.0.1 5000 typ host' } };
    assert.equal(preferActiveDtls(candidate), candidate);
  });
});

async function waitFor<T>(find: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('never happened');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
