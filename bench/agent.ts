/**
 * A benchmark child process (started with IPC by bench/transfer.ts and bench/job.ts), so the worker
 * side and the client side each have their own process, CPU and RSS. It obeys requests
 * `{id, cmd, ...}` and answers `{id, ok, value | error}`.
 *
 *   worker side: tcp-listen, raw-accept, worker-start, worker-stats
 *   client side: tcp-send, raw-dial, client-connect, job-upload, job-download, job-trivial
 *   both:        raw-send, rss, exit
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createServer, connect, type Server } from 'node:net';
import { outputsDirectory, prepareInputs } from '../client/node-files-for-job.js';
import { runJob, type JobEvent } from '../client/run-job.js';
import { acceptPeers, dialPeer } from '../peer/connect.js';
import { nodeWrtc, preferActiveDtls } from '../peer/node-wrtc.js';
import { fileSink } from '../files/node-files.js';
import type { ByteSink, ByteSource, Link } from '../protocol/link.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { buildJobDefinition, computeJobId, type JobSpec } from '../protocol/job.js';
import { PeerdockWorker } from '../worker/worker.js';
import { acceptRaw, dialRaw, type RawEndpoint } from './raw-channel.js';

const TEST_IMAGE = 'peerdock-test/busybox:latest';

let raw: RawEndpoint | undefined;
let rawReady: Promise<RawEndpoint> | undefined;
let tcpServer: Server | undefined;
let worker: PeerdockWorker | undefined;
let client: SignalingClient | undefined;
const signalings: SignalingClient[] = [];
let link: Link | undefined;
let linkReady: Promise<Link> | undefined;
/** What a diagnostic Link receiver does with the bytes: nothing, sha256 only, or sha256 + disk. */
let sinkMode: 'discard' | 'hash' | 'disk' = 'discard';
let sinkDir = '';

/** The diagnostic Link's receiving side (acceptFiles), per sinkMode. */
function diagnosticSink(start: { sha256: string }): ByteSink {
  if (sinkMode === 'disk') return fileSink(join(sinkDir, `${start.sha256}-${randomBytes(4).toString('hex')}`), { expectSha256: start.sha256 });
  const hash = sinkMode === 'hash' ? createHash('sha256') : undefined;
  return {
    async write(chunk) {
      hash?.update(chunk);
    },
    // 'discard' trusts the sender's hash: it measures the protocol alone.
    finish: async () => (hash ? hash.digest('hex') : start.sha256),
    async abort() {},
  };
}

/** A virtual file of `size` bytes: a 1 MiB random block repeated, read from memory. */
function memorySource(size: number): { source: ByteSource; sha256: string } {
  const block = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  for (let offset = 0; offset < size; offset += block.length) hash.update(block.subarray(0, Math.min(block.length, size - offset)));
  return {
    sha256: hash.digest('hex'),
    source: {
      size,
      async read(offset, length) {
        const start = offset % block.length;
        return block.subarray(start, Math.min(start + length, block.length));
      },
    },
  };
}

type Request = { id: number; cmd: string; [key: string]: unknown };

const handlers: Record<string, (request: Request) => Promise<unknown>> = {
  async 'tcp-listen'() {
    tcpServer = createServer((socket) => {
      let expected = -1;
      let received = 0;
      let header = Buffer.alloc(0);
      socket.on('data', (data: Buffer) => {
        if (expected < 0) {
          header = Buffer.concat([header, data]);
          if (header.length < 8) return;
          expected = Number(header.readBigUInt64BE(0));
          data = header.subarray(8);
        }
        received += data.length;
        if (received >= expected) socket.end(Buffer.from([1]));
      });
    });
    await new Promise<void>((resolve) => tcpServer!.listen(0, '127.0.0.1', resolve));
    return (tcpServer.address() as { port: number }).port;
  },

  async 'tcp-send'({ port, bytes }) {
    const total = bytes as number;
    const socket = connect(port as number, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const message = randomBytes(64 * 1024);
    const started = performance.now();
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(total));
    socket.write(header);
    const acked = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    for (let sent = 0; sent < total; sent += message.length) {
      if (!socket.write(Buffer.from(message))) await new Promise((resolve) => socket.once('drain', resolve));
    }
    await acked;
    const ended = performance.now();
    socket.destroy();
    return { bytes: total, ms: ended - started, from: epoch(started), to: epoch(ended) };
  },

  async 'raw-accept'({ url, queue }) {
    const signaling = await SignalingClient.connect({
      url: url as string,
      queue: queue as string,
      role: 'worker',
      workerId: 'raw-baseline',
      capacity: { cores: 1, free: 1, queued: 0 },
    });
    signalings.push(signaling);
    rawReady = new Promise((resolve) => acceptRaw(signaling, nodeWrtc(), (peer) => resolve((raw = peer))));
    return true;
  },

  async 'raw-dial'({ url, queue }) {
    const signaling = await SignalingClient.connect({ url: url as string, queue: queue as string, role: 'client' });
    signalings.push(signaling);
    // A failed connect is retried (and reported): the baseline should measure a working channel.
    for (let attempt = 1; ; attempt++) {
      try {
        raw = await dialRaw(signaling, nodeWrtc());
        return attempt - 1;
      } catch (error) {
        console.error(`[agent] raw dial attempt ${attempt} failed: ${(error as Error).message}`);
        if (attempt >= 3) throw error;
      }
    }
  },

  async 'raw-wait'() {
    await rawReady;
    return true;
  },

  async 'raw-send'({ bytes, high, low }) {
    // The acceptor serves the peer of its latest raw-accept; the dialer, the peer it dialed.
    const peer = rawReady ? await rawReady : raw;
    if (!peer) throw new Error('no raw peer');
    const result = await timed(() => peer.send(bytes as number, high ? { high: high as number, low: low as number } : undefined));
    return { bytes, ...result };
  },

  /** Diagnostic: Link over acceptPeers/dialPeer, outside the worker and runJob. */
  async 'link-accept'({ url, queue }) {
    const signaling = await SignalingClient.connect({
      url: url as string,
      queue: queue as string,
      role: 'worker',
      workerId: 'link-diagnostic',
      capacity: { cores: 1, free: 1, queued: 0 },
    });
    signalings.push(signaling);
    linkReady = new Promise((resolve) =>
      acceptPeers(signaling, { wrtc: nodeWrtc(), adjustRemoteSignal: preferActiveDtls }, (session) => {
        session.link.acceptFiles(diagnosticSink);
        resolve((link = session.link));
      }),
    );
    return true;
  },

  async 'link-dial'({ url, queue }) {
    const signaling = await SignalingClient.connect({ url: url as string, queue: queue as string, role: 'client' });
    signalings.push(signaling);
    while (signaling.workers.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    link = (await dialPeer(signaling, signaling.workers[0]!.socketId, { wrtc: nodeWrtc() })).link;
    link.acceptFiles(diagnosticSink);
    return true;
  },

  async 'link-wait'() {
    await linkReady;
    return true;
  },

  async 'link-mode'({ mode, dir }) {
    sinkMode = mode as typeof sinkMode;
    sinkDir = dir as string;
    return true;
  },

  /** Sends a memory-backed file over the diagnostic Link; ms until the peer verified it. */
  async 'link-send'({ bytes }) {
    const peer = linkReady ? await linkReady : link;
    if (!peer) throw new Error('no link');
    const { source, sha256 } = memorySource(bytes as number);
    return { bytes, ...(await timed(() => peer.sendFile({ sha256 }, source))) };
  },

  async 'worker-start'({ url, queue, dataDir }) {
    worker = new PeerdockWorker({
      signalUrl: url as string,
      queue: queue as string,
      workerId: 'bench-worker',
      cores: 2,
      dataDir: dataDir as string,
      maxJobDurationSeconds: 600,
      maxInputBytes: 10 * 1024 ** 3,
      maxOutputBytes: 10 * 1024 ** 3,
      maxLogBytes: 64 * 1024 ** 2,
      limits: { memoryBytes: 2 * 1024 ** 3 },
      wrtc: nodeWrtc(),
    });
    await worker.start();
    return true;
  },

  async 'worker-stats'() {
    return { ...worker!.stats };
  },

  async 'client-connect'({ url, queue }) {
    client = await SignalingClient.connect({ url: url as string, queue: queue as string, role: 'client' });
    signalings.push(client);
    const deadline = Date.now() + 20_000;
    while (client.workers.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return client.workers.length;
  },

  /** Sends one input file: the sending-inputs phase, from that state to the worker's "queued". */
  async 'job-upload'({ path }) {
    const inputs = await prepareInputs([{ path: path as string, name: 'x' }]);
    const times: Record<string, number> = {};
    let uploaded = 0;
    try {
      await job(
        { image: TEST_IMAGE, command: ['sh', '-c', 'test -s /inputs/x'], env: { NONCE: nonce() } },
        inputs,
        undefined,
        (event, now) => {
          if (event.type === 'state' && event.state === 'sending-inputs') times.start = now;
          else if (event.type === 'state' && times.start !== undefined && times.verified === undefined) times.verified = now;
          else if (event.type === 'upload') {
            times.lastChunk = now;
            uploaded = event.done;
          }
        },
      );
    } finally {
      await inputs.close();
    }
    return {
      bytes: uploaded,
      ms: times.verified! - times.start!,
      lastChunkMs: times.lastChunk! - times.start!,
      from: epoch(times.start!),
      to: epoch(times.verified!),
    };
  },

  /** Receives one output of `bytes` made in the container: from file-start to the result. */
  async 'job-download'({ bytes, outputsDir }) {
    const times: Record<string, number> = {};
    let size = 0;
    const inputs = await prepareInputs([]);
    const result = await job(
      {
        image: TEST_IMAGE,
        command: ['sh', '-c', `head -c ${bytes as number} /dev/urandom > /outputs/out.bin`],
        env: { NONCE: nonce() },
      },
      inputs,
      outputsDir as string,
      (event, now) => {
        if (event.type === 'download') {
          times.first ??= now;
          size = event.total;
        }
      },
      () => (times.opened = performance.now()),
    );
    return { bytes: size, ms: result.endedAt - times.opened!, from: epoch(times.opened!), to: epoch(result.endedAt) };
  },

  /** Trivial jobs on one warm signaling client: submit → result, in ms. */
  async 'job-trivial'({ command, nonce: fixed }) {
    const inputs = await prepareInputs([]);
    const started = performance.now();
    const phases: Record<string, number> = {};
    const result = await job(
      { image: TEST_IMAGE, command: command as string, env: { NONCE: (fixed as string | undefined) ?? nonce() } },
      inputs,
      undefined,
      (event, now) => {
        if (event.type === 'state' && event.state !== 'dispatching') phases[event.state] ??= now - started;
      },
    );
    return {
      ms: result.endedAt - started,
      phases,
      containerMs: result.durationMs,
      cached: result.cached,
      state: result.state,
      exitCode: result.exitCode,
    };
  },

  async rss() {
    return process.memoryUsage().rss;
  },

  async exit() {
    setTimeout(() => void shutdown(), 10);
    return true;
  },
};

const epoch = (t: number) => performance.timeOrigin + t;

/** Runs a timed send; returns its duration and wall-clock bounds for CPU accounting. */
async function timed(send: () => Promise<unknown>): Promise<{ ms: number; from: number; to: number }> {
  const from = performance.now();
  await send();
  const to = performance.now();
  return { ms: to - from, from: epoch(from), to: epoch(to) };
}

function nonce(): string {
  return randomBytes(8).toString('hex');
}

async function job(
  spec: JobSpec,
  inputs: Awaited<ReturnType<typeof prepareInputs>>,
  outputsDir: string | undefined,
  onEvent: (event: JobEvent, now: number) => void,
  onOpenOutput?: () => void,
) {
  if (!client) throw new Error('client-connect first');
  const definition = buildJobDefinition(spec, inputs.refs);
  const jobId = await computeJobId(definition);
  const outputs = outputsDir ? outputsDirectory(outputsDir) : undefined;
  const result = await runJob({
    signaling: client,
    peer: { wrtc: nodeWrtc() },
    jobId,
    definition,
    inputs: inputs.sources,
    openOutput: async (file, offset) => {
      onOpenOutput?.();
      if (!outputs) throw new Error(`unexpected output ${file.path}`);
      return outputs.openOutput(file, offset);
    },
    onEvent: (event) => {
      if (event.type === 'retry') console.error(`[agent] runJob retry ${event.attempt}: ${event.reason}`);
      onEvent(event, performance.now());
    },
  });
  const endedAt = performance.now();
  if (result.state !== 'finished' || result.exitCode !== 0) {
    throw new Error(`job ${result.state} with exit code ${result.exitCode}: ${JSON.stringify(result.error ?? {})}`);
  }
  return { ...result, endedAt };
}

async function shutdown(): Promise<void> {
  raw?.close();
  tcpServer?.close();
  await worker?.stop().catch(() => {});
  for (const signaling of signalings) signaling.close();
  process.exit(0);
}

process.on('message', (request: Request) => {
  const handler = handlers[request.cmd];
  if (!handler) return process.send!({ id: request.id, ok: false, error: `unknown command ${request.cmd}` });
  handler(request).then(
    (value) => process.send!({ id: request.id, ok: true, value }),
    (error: Error) => process.send!({ id: request.id, ok: false, error: error.stack ?? String(error) }),
  );
});
process.on('disconnect', () => void shutdown());
process.send!({ ready: true });
