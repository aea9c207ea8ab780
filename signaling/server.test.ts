import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanup as nodeDatachannelCleanup } from 'node-datachannel';
import SimplePeer from 'simple-peer';
import { io as connectSocket, type Socket as ClientSocket } from 'socket.io-client';
import { sealEnvelope } from '../protocol/envelope.js';
import { PeerdockError } from '../protocol/errors.js';
import { deriveQueueKeys, type QueueKeys } from '../protocol/queue-keys.js';
import { MAX_SIGNALING_MESSAGE_BYTES, type Capacity, type PresenceWorker } from '../protocol/signaling-events.js';
import { acceptPeers, dialPeer, type PeerSession } from '../peer/connect.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient, type SignalPayload } from '../peer/signaling-client.js';
import { startSignalingServer, type SignalingServer } from './server.js';

const QUEUE_A = 'queue-alpha-0123456789';
const QUEUE_B = 'queue-bravo-0123456789';
const GUARD_MS = 8000; // only a guard against hanging; no assertion depends on it

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

let server: SignalingServer;
let keysA: QueueKeys;
let keysB: QueueKeys;
const cleanups: Array<() => void> = [];

function track<T extends { close(): unknown }>(thing: T): T {
  cleanups.push(() => thing.close());
  return thing;
}

before(async () => {
  server = await startSignalingServer({ port: 0, host: '127.0.0.1' });
  [keysA, keysB] = await Promise.all([deriveQueueKeys(QUEUE_A), deriveQueueKeys(QUEUE_B)]);
});

after(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await server.close();
  try {
    nodeDatachannelCleanup(); // see releaseNativeWebRtc in peer/link.test.ts
  } catch (error) {
    console.error(`node-datachannel cleanup: ${(error as Error).message}`);
  }
});

let workerCount = 0;
async function worker(
  queue: string,
  capacity: Capacity = { cores: 2, free: 2, queued: 0 },
  workerId = `worker-${++workerCount}`,
): Promise<SignalingClient> {
  return track(await SignalingClient.connect({ url: server.url, queue, role: 'worker', workerId, capacity }));
}

async function client(queue: string): Promise<SignalingClient> {
  return track(await SignalingClient.connect({ url: server.url, queue, role: 'client' }));
}

/** Resolves with the presence once it satisfies `predicate` (now or on a later update). */
function presenceWhere(who: SignalingClient, predicate: (workers: PresenceWorker[]) => boolean, what: string): Promise<PresenceWorker[]> {
  return new Promise((resolve, reject) => {
    if (predicate(who.workers)) return resolve(who.workers);
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`presence never showed ${what}; last seen ${JSON.stringify(who.workers)}`));
    }, GUARD_MS);
    const stop = who.onPresence((workers) => {
      if (!predicate(workers)) return;
      clearTimeout(timer);
      stop();
      resolve(workers);
    });
  });
}

async function waitUntil(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + GUARD_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A bare socket.io client, to act as a peer that does not follow the rules. */
function rawSocket(auth: Record<string, unknown>, transports: Array<'websocket' | 'polling'> = ['websocket']): Promise<ClientSocket> {
  const socket = connectSocket(server.url, { transports, auth, reconnection: false, forceNew: true });
  cleanups.push(() => socket.close());
  return new Promise((resolve, reject) => {
    socket.once('config', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

function nextEvent<T = unknown>(socket: ClientSocket, event: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} event`)), GUARD_MS);
    socket.once(event, (value: T) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

function nextSignal(who: SignalingClient): Promise<{ from: string; payload: SignalPayload }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no signal arrived')), GUARD_MS);
    const stop = who.onSignal((from, payload) => {
      clearTimeout(timer);
      stop();
      resolve({ from, payload });
    });
  });
}

const payload: SignalPayload = { session: '0123456789abcdef0123456789abcdef', signal: { type: 'offer', sdp: 'v=0\r\n' } };

describe('presence', { timeout: 30_000 }, () => {
  test('lists a worker with its capacity to its room, and not to another room', async () => {
    const w = await worker(QUEUE_A, { cores: 4, free: 3, queued: 1 }, 'alpha.worker@host-1');
    const sentinel = await worker(QUEUE_B);
    const c = await client(QUEUE_A);
    const other = await client(QUEUE_B);

    const seen = await presenceWhere(c, (workers) => workers.some((entry) => entry.socketId === w.id), 'the worker');
    assert.deepEqual(
      seen.find((entry) => entry.socketId === w.id),
      { socketId: w.id, workerId: 'alpha.worker@host-1', capacity: { cores: 4, free: 3, queued: 1 } },
    );
    assert.ok(!seen.some((entry) => entry.socketId === sentinel.id), 'a worker of another queue is listed');

    // The other room's client does get presence (its own worker), but never the first worker.
    const otherSeen = await presenceWhere(other, (workers) => workers.some((entry) => entry.socketId === sentinel.id), 'its own worker');
    assert.ok(!otherSeen.some((entry) => entry.socketId === w.id), 'a worker is listed to another queue');
    w.setCapacity({ cores: 4, free: 0, queued: 5 });
    await presenceWhere(c, (workers) => workers.some((entry) => entry.socketId === w.id && entry.capacity.free === 0), 'the update');
    assert.ok(!other.workers.some((entry) => entry.socketId === w.id));
    for (const each of [w, sentinel, c, other]) each.close();
  });

  test('setCapacity updates the presence every client of the room sees', async () => {
    const w = await worker(QUEUE_A, { cores: 2, free: 2, queued: 0 });
    const c1 = await client(QUEUE_A);
    const c2 = await client(QUEUE_A);
    await presenceWhere(c1, (workers) => workers.some((entry) => entry.socketId === w.id && entry.capacity.free === 2), 'free 2');
    w.setCapacity({ cores: 2, free: 0, queued: 7 });
    for (const c of [c1, c2]) {
      const seen = await presenceWhere(c, (workers) => workers.some((entry) => entry.socketId === w.id && entry.capacity.free === 0), 'free 0');
      assert.deepEqual(seen.find((entry) => entry.socketId === w.id)?.capacity, { cores: 2, free: 0, queued: 7 });
    }
    for (const each of [w, c1, c2]) each.close();
  });

  test('a worker leaving disappears from the presence', async () => {
    const stays = await worker(QUEUE_A);
    const leaves = await worker(QUEUE_A);
    const c = await client(QUEUE_A);
    await presenceWhere(c, (workers) => [stays.id, leaves.id].every((id) => workers.some((entry) => entry.socketId === id)), 'both');
    const leftId = leaves.id;
    leaves.close();
    const seen = await presenceWhere(c, (workers) => !workers.some((entry) => entry.socketId === leftId), 'the worker gone');
    assert.ok(seen.some((entry) => entry.socketId === stays.id), 'the worker that stayed is still listed');
    for (const each of [stays, c]) each.close();
  });

  test('capacity from a client, or malformed capacity, is ERR_BAD_MESSAGE and changes nothing', async () => {
    const w = await worker(QUEUE_A, { cores: 2, free: 2, queued: 0 });
    const c = await client(QUEUE_A);
    await presenceWhere(c, (workers) => workers.some((entry) => entry.socketId === w.id), 'the worker');
    const rawClient = await rawSocket({ roomId: keysA.roomId, role: 'client' });
    const clientError = nextEvent<{ code: string; message: string }>(rawClient, 'peerdock-error');
    rawClient.emit('capacity', { cores: 1, free: 1, queued: 0 });
    assert.deepEqual(await clientError, { code: 'ERR_BAD_MESSAGE', message: 'only workers announce capacity' });

    // A raw observer records every presence the room gets, unparsed.
    const observed: unknown[] = [];
    rawClient.on('presence', (value: { workers: Array<{ workerId: string; capacity: unknown }> }) => {
      for (const entry of value.workers) if (entry.workerId === 'raw') observed.push(entry.capacity);
    });
    const rawWorker = await rawSocket({ roomId: keysA.roomId, role: 'worker', workerId: 'raw', capacity: { cores: 1, free: 1, queued: 0 } });
    await presenceWhere(c, (workers) => workers.some((entry) => entry.workerId === 'raw'), 'the raw worker');
    for (const bad of [{ cores: 0, free: 1, queued: 0 }, { cores: 1, free: -1, queued: 0 }, 'full', { cores: 1, free: 1, queued: 0, extra: 1 }]) {
      const error = nextEvent<{ code: string; message: string }>(rawWorker, 'peerdock-error');
      rawWorker.emit('capacity', bad);
      const received = await error;
      assert.equal(received.code, 'ERR_BAD_MESSAGE');
      assert.match(received.message, /^capacity is malformed: /);
    }
    // A valid update after the bad ones: presence is ordered, so any bad one broadcast would come first.
    rawWorker.emit('capacity', { cores: 1, free: 0, queued: 2 });
    await presenceWhere(c, (workers) => workers.some((entry) => entry.workerId === 'raw' && entry.capacity.free === 0), 'the valid update');
    await waitUntil(() => observed.length > 0 && (observed.at(-1) as Capacity).free === 0, 'the observer catching up');
    assert.deepEqual(observed, [
      { cores: 1, free: 1, queued: 0 },
      { cores: 1, free: 0, queued: 2 },
    ]);
    rawClient.close();
    rawWorker.close();
    w.close();
    c.close();
  });
});

describe('signals', { timeout: 30_000 }, () => {
  test('a signal reaches its target in the same room, with the server-set from', async () => {
    const w = await worker(QUEUE_A);
    const c = await client(QUEUE_A);
    const arrival = nextSignal(w);
    await c.sendSignal(w.id!, payload);
    const { from, payload: received } = await arrival;
    assert.equal(from, c.id);
    assert.deepEqual(received, payload);

    // and the reverse direction
    const back = nextSignal(c);
    await w.sendSignal(c.id!, { ...payload, signal: { type: 'answer', sdp: 'v=0\r\n' } });
    assert.equal((await back).from, w.id);
    w.close();
    c.close();
  });

  test('the sender cannot choose the from the recipient sees', async () => {
    const target = await rawSocket({ roomId: keysA.roomId, role: 'client' });
    const sender = await rawSocket({ roomId: keysA.roomId, role: 'client' });
    const envelope = await sealEnvelope(keysA.signalKey, { roomId: keysA.roomId, from: sender.id!, to: target.id! }, payload);

    const refused = nextEvent<{ code: string }>(sender, 'peerdock-error');
    sender.emit('signal', { to: target.id, from: 'someone-else', envelope });
    assert.equal((await refused).code, 'ERR_BAD_MESSAGE');

    const delivered = nextEvent<{ from: string; envelope: unknown }>(target, 'signal');
    sender.emit('signal', { to: target.id, envelope });
    assert.deepEqual(await delivered, { from: sender.id, envelope });
    target.close();
    sender.close();
  });

  test('a socket of another room cannot signal a worker: ERR_SIGNAL_TARGET, and nothing is delivered', async () => {
    const target = await rawSocket({ roomId: keysA.roomId, role: 'worker', workerId: 'target', capacity: { cores: 1, free: 1, queued: 0 } });
    const delivered: unknown[] = [];
    target.on('signal', (value: unknown) => delivered.push(value));

    const intruder = await rawSocket({ roomId: keysB.roomId, role: 'client' });
    // Even an envelope sealed with the right key (as if the queue had leaked) must not cross rooms.
    const envelope = await sealEnvelope(keysA.signalKey, { roomId: keysA.roomId, from: intruder.id!, to: target.id! }, payload);
    const refused = nextEvent<{ code: string; message: string }>(intruder, 'peerdock-error');
    intruder.emit('signal', { to: target.id, envelope });
    const error = await refused;
    assert.equal(error.code, 'ERR_SIGNAL_TARGET');
    assert.ok(!error.message.includes(keysA.roomId), 'the error leaks the other room');

    // An unknown socket id gets the same answer, so the intruder learns nothing from it.
    const unknown = nextEvent<{ code: string }>(intruder, 'peerdock-error');
    intruder.emit('signal', { to: 'no-such-socket', envelope });
    assert.equal((await unknown).code, 'ERR_SIGNAL_TARGET');

    // A peer of the right room is still delivered to, after the refusals.
    const friend = await rawSocket({ roomId: keysA.roomId, role: 'client' });
    const friendly = nextEvent(target, 'signal');
    friend.emit('signal', { to: target.id, envelope });
    await friendly;
    assert.equal(delivered.length, 1, 'the intruder\'s signal was delivered');
    assert.equal((delivered[0] as { from: string }).from, friend.id);
    for (const socket of [target, intruder, friend]) socket.close();
  });

  test('a malformed signal is an ERR_BAD_MESSAGE error event, and the connection stays usable', async () => {
    const target = await rawSocket({ roomId: keysA.roomId, role: 'client' });
    const sender = await rawSocket({ roomId: keysA.roomId, role: 'client' });
    const good = await sealEnvelope(keysA.signalKey, { roomId: keysA.roomId, from: sender.id!, to: target.id! }, payload);
    const malformed: unknown[] = [
      'garbage',
      null,
      42,
      {},
      { to: target.id },
      { envelope: good },
      { to: '', envelope: good },
      { to: 'x'.repeat(65), envelope: good },
      { to: target.id, envelope: { iv: 'short', data: good.data } },
      { to: target.id, envelope: { ...good, data: 'not base64!' } },
      { to: target.id, envelope: 'sealed' },
    ];
    for (const value of malformed) {
      const error = nextEvent<{ code: string; message: string }>(sender, 'peerdock-error');
      sender.emit('signal', value);
      const received = await error;
      assert.equal(received.code, 'ERR_BAD_MESSAGE', JSON.stringify(value));
      assert.match(received.message, /^signal is malformed: /);
    }
    const delivered = nextEvent(target, 'signal');
    sender.emit('signal', { to: target.id, envelope: good });
    await delivered;
    assert.ok(sender.connected);
    target.close();
    sender.close();
  });
});

describe('handshake and HTTP', { timeout: 30_000 }, () => {
  test('a handshake with a bad roomId or role is refused with ERR_SIGNALING', async () => {
    for (const auth of [
      { roomId: 'not-a-room', role: 'client' },
      { roomId: keysA.roomId.toUpperCase(), role: 'client' },
      { roomId: keysA.roomId, role: 'admin' },
      { role: 'client' },
      {},
      { roomId: keysA.roomId, role: 'client', extra: true },
    ]) {
      const socket = connectSocket(server.url, { transports: ['websocket'], auth, reconnection: false, forceNew: true });
      const error = await new Promise<Error & { data?: { code: string; message: string } }>((resolve, reject) => {
        socket.once('connect_error', resolve);
        socket.once('connect', () => reject(new Error(`handshake ${JSON.stringify(auth)} was accepted`)));
      });
      socket.close();
      assert.equal(error.data?.code, 'ERR_SIGNALING', JSON.stringify(auth));
      assert.match(error.data.message, /^handshake rejected: /);
    }
  });

  test('SignalingClient.connect rejects with ERR_SIGNALING when the server refuses the handshake', async () => {
    const refusedWith = (pattern: RegExp) => (error: unknown) => {
      assert.ok(error instanceof PeerdockError, String(error));
      assert.equal(error.code, 'ERR_SIGNALING');
      assert.match(error.message, pattern);
      return true;
    };
    // a worker that does not announce its capacity
    await assert.rejects(
      SignalingClient.connect({ url: server.url, queue: QUEUE_A, role: 'worker', workerId: 'w' }),
      refusedWith(/refused us: a worker must announce its workerId and capacity/),
    );
    // a workerId the server does not accept
    await assert.rejects(
      SignalingClient.connect({ url: server.url, queue: QUEUE_A, role: 'worker', workerId: 'has space', capacity: { cores: 1, free: 1, queued: 0 } }),
      refusedWith(/refused us: handshake rejected: workerId/),
    );
  });

  test('SignalingClient.connect to a server that is not there rejects with ERR_SIGNALING', async () => {
    const gone = await startSignalingServer({ port: 0, host: '127.0.0.1' });
    await gone.close();
    await assert.rejects(
      SignalingClient.connect({ url: gone.url, queue: QUEUE_A, role: 'client', connectTimeoutMs: 300 }),
      (error: unknown) => error instanceof PeerdockError && error.code === 'ERR_SIGNALING' && error.message.includes(gone.url),
    );
  });

  test('/healthz answers {ok:true}; other paths are 404 without a frame', async () => {
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { ok: true });
    const root = await fetch(`${server.url}/`);
    assert.equal(root.status, 404);
    await root.text();
  });

  test('serves the frame folder, with a CORS header so other sites can embed the element, and nothing outside it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peerdock-static-'));
    await writeFile(join(dir, 'peerdock-job.js'), 'export {};');
    const framed = await startSignalingServer({ port: 0, host: '127.0.0.1', staticDir: dir });
    try {
      const script = await fetch(`${framed.url}/peerdock-job.js`);
      assert.equal(script.status, 200);
      assert.equal(script.headers.get('access-control-allow-origin'), '*');
      assert.match(script.headers.get('content-type') ?? '', /javascript/);
      assert.equal(await script.text(), 'export {};');
      const escape = await fetch(`${framed.url}/..%2f..%2fetc%2fpasswd`);
      assert.equal(escape.status, 404);
      await escape.text();
    } finally {
      await framed.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const transport of ['websocket', 'polling'] as const) {
    test(`a payload over maxHttpBufferSize (${transport}) drops that socket but not the server`, async () => {
      const bystander = await rawSocket({ roomId: keysA.roomId, role: 'client' });
      const attacker = await rawSocket({ roomId: keysA.roomId, role: 'client' }, [transport]);
      const disconnected = nextEvent<string>(attacker, 'disconnect');
      attacker.emit('signal', { to: bystander.id, envelope: { iv: 'A'.repeat(16), data: 'A'.repeat(MAX_SIGNALING_MESSAGE_BYTES * 2) } });
      await disconnected;

      const health = await fetch(`${server.url}/healthz`);
      assert.deepEqual(await health.json(), { ok: true });
      assert.ok(bystander.connected, 'another socket was dropped too');
      // and new peers still get in and get their signals through
      const w = await worker(QUEUE_A);
      const c = await client(QUEUE_A);
      const arrival = nextSignal(w);
      await c.sendSignal(w.id!, payload);
      assert.equal((await arrival).from, c.id);
      for (const each of [bystander, attacker, w, c]) each.close();
    });
  }
});

describe('blindness', () => {
  test('the server never sees the queue, an SDP or a candidate: only room ids and sealed envelopes', { timeout: 20_000 }, async () => {
    // Everything the server receives and sends, at the engine.io level (handshakes included).
    const seen: string[] = [];
    const record = (packet: { type: string; data?: unknown }) => {
      if (typeof packet.data === 'string') seen.push(packet.data);
      else if (packet.data !== undefined) seen.push(Buffer.from(packet.data as Uint8Array).toString('latin1'));
    };
    const onEngineConnection = (socket: import('node:events').EventEmitter) => {
      socket.on('packet', record);
      socket.on('packetCreate', record);
    };
    server.io.engine.on('connection', onEngineConnection);

    const remoteSignals: Array<Record<string, unknown>> = [];
    const keep = (signal: Record<string, unknown>) => {
      remoteSignals.push(signal);
      return signal;
    };
    const w = await worker(QUEUE_A);
    const c = await client(QUEUE_A);
    const accepted = new Promise<PeerSession>((resolve) => {
      const options = { wrtc: nodeWrtc(), adjustRemoteSignal: keep, connectTimeoutMs: 3000 };
      cleanups.push(acceptPeers(w, options, resolve));
    });
    // Retried only for libdatachannel's rare DTLS race (see isDtlsRace in peer/link.test.ts).
    let dialed: PeerSession | undefined;
    for (let attempt = 1; !dialed; attempt++) {
      dialed = await dialPeer(c, w.id!, { wrtc: nodeWrtc(), adjustRemoteSignal: keep }).catch((error: unknown) => {
        if (attempt < 5 && error instanceof PeerdockError && error.message.includes('remote candidate without ICE transport')) return undefined;
        throw error;
      });
    }
    const answered = await accepted;
    dialed.link.close();
    answered.link.close();
    server.io.engine.off('connection', onEngineConnection);

    const capture = seen.join('\n');
    // The capture is real: it holds the handshakes (room id) and every relayed signal.
    assert.ok(capture.includes(keysA.roomId), 'the capture missed the handshake');
    const relayed = seen.filter((text) => text.startsWith('2["signal"'));
    assert.ok(relayed.length >= 2 * remoteSignals.length, `only ${relayed.length} signal packets for ${remoteSignals.length} signals`);

    const secrets = new Set<string>([QUEUE_A, dialed.session, 'a=fingerprint', 'a=ice-ufrag', 'a=ice-pwd', 'candidate:', 'webrtc-datachannel']);
    let sdps = 0;
    for (const signal of remoteSignals as SimplePeer.SignalData[]) {
      if ('sdp' in signal && signal.sdp) {
        sdps++;
        for (const line of signal.sdp.split(/\r?\n/)) if (line.length >= 8) secrets.add(line);
      }
      if ('candidate' in signal && signal.candidate) secrets.add(signal.candidate.candidate);
    }
    assert.ok(sdps >= 2, 'expected an offer and an answer to pass through');
    for (const secret of secrets) assert.ok(!capture.includes(secret), `the server saw ${JSON.stringify(secret)}`);
    w.close();
    c.close();
  });
});
