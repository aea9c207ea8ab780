/**
 * File transfer over the real stack, in one process: signaling server, PeerdockWorker (real
 * Docker), runJob with files on disk, node-datachannel WebRTC between them.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { outputsDirectory, prepareInputs } from '../client/node-files-for-job.js';
import { runJob, type JobEvent, type RunJobOptions } from '../client/run-job.js';
import { sha256OfFile } from '../files/node-files.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { toPeerdockError } from '../protocol/errors.js';
import { buildJobDefinition, computeJobId, type JobSpec } from '../protocol/job.js';
import { TRANSFER_WINDOW_BYTES, type ByteSink, type ByteSource } from '../protocol/link.js';
import { startSignalingServer, type SignalingServer } from '../signaling/server.js';
import { PeerdockWorker, type WorkerOptions } from '../worker/worker.js';
import { randomQueue, removeTempDirs, tempDir, TEST_IMAGE } from './harness.js';

const MiB = 1024 * 1024;

async function randomFile(dir: string, name: string, bytes: number): Promise<string> {
  const path = join(dir, name);
  const out = createWriteStream(path);
  for (let written = 0; written < bytes; written += 4 * MiB) {
    if (!out.write(randomBytes(Math.min(4 * MiB, bytes - written)))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return path;
}

describe('file transfer between a client and a worker', () => {
  let server: SignalingServer;
  let dir: string;
  const workers: PeerdockWorker[] = [];
  const clients: SignalingClient[] = [];

  async function startWorker(queue: string, overrides: Partial<WorkerOptions> = {}): Promise<PeerdockWorker> {
    const worker = new PeerdockWorker({
      signalUrl: server.url,
      queue,
      workerId: `transfer-${Math.random().toString(36).slice(2, 8)}`,
      cores: 2,
      dataDir: await tempDir('transfer-worker'),
      maxJobDurationSeconds: 300,
      maxInputBytes: 1024 * MiB,
      maxOutputBytes: 1024 * MiB,
      maxLogBytes: MiB,
      wrtc: nodeWrtc(),
      ...overrides,
    });
    await worker.start();
    workers.push(worker);
    return worker;
  }

  async function client(queue: string): Promise<SignalingClient> {
    const signaling = await SignalingClient.connect({ url: server.url, queue, role: 'client' });
    clients.push(signaling);
    return signaling;
  }

  /** Runs `command` with the given input files; outputs land in a fresh folder. */
  async function run(
    signaling: SignalingClient,
    command: string,
    inputs: Array<{ path: string; name: string }>,
    extra: Partial<RunJobOptions> = {},
  ) {
    const prepared = await prepareInputs(inputs);
    const spec: JobSpec = { image: TEST_IMAGE, command };
    const definition = buildJobDefinition(spec, prepared.refs);
    const outputs = await tempDir('transfer-out');
    const events: JobEvent[] = [];
    try {
      const result = await runJob({
        signaling,
        peer: { wrtc: nodeWrtc() },
        jobId: await computeJobId(definition),
        definition,
        inputs: prepared.sources,
        ...outputsDirectory(outputs),
        waitForWorkerMs: 20_000,
        onEvent: (event) => events.push(event),
        ...extra,
      });
      return { result, events, outputs };
    } finally {
      await prepared.close();
    }
  }

  before(async () => {
    server = await startSignalingServer({ port: 0, host: '127.0.0.1' });
    dir = await tempDir('transfer-in');
  });

  after(async () => {
    for (const signaling of clients) signaling.close();
    for (const worker of workers) await worker.stop();
    await server.close();
    await removeTempDirs();
  });

  test('a 50 MiB input and output make the round trip intact, and a resend transfers nothing', async () => {
    const queue = randomQueue();
    const worker = await startWorker(queue);
    const signaling = await client(queue);
    const input = await randomFile(dir, 'fifty.bin', 50 * MiB);
    const { sha256 } = await sha256OfFile(input);

    const first = await run(signaling, 'sh -c "cp /inputs/fifty.bin /outputs/copy.bin"', [{ path: input, name: 'fifty.bin' }]);
    assert.equal(first.result.state, 'finished');
    assert.equal(first.result.exitCode, 0);
    assert.equal(worker.stats.inputBytesReceived, 50 * MiB);
    assert.deepEqual(first.result.outputs, [{ path: 'copy.bin', size: 50 * MiB, sha256 }]);
    assert.equal((await sha256OfFile(join(first.outputs, 'copy.bin'))).sha256, sha256);
    assert.ok(first.events.some((event) => event.type === 'upload' && event.done === 50 * MiB));

    // Another job with the same input: the worker already holds the bytes.
    const second = await run(signaling, 'sh -c "wc -c /inputs/fifty.bin"', [{ path: input, name: 'fifty.bin' }]);
    assert.equal(second.result.state, 'finished');
    assert.equal(worker.stats.inputBytesReceived, 50 * MiB, 'no input byte sent again');
    assert.ok(!second.events.some((event) => event.type === 'upload'));
  });

  test('a connection cut mid-transfer resumes from the bytes already received', async () => {
    const queue = randomQueue();
    const first = await startWorker(queue, { workerId: 'resume-worker' });
    const signaling = await client(queue);
    const total = 96 * MiB;
    const input = await randomFile(dir, 'resume.bin', total);
    const { sha256 } = await sha256OfFile(input);

    const running = run(signaling, 'sh -c "sha256sum /inputs/resume.bin > /outputs/sum.txt"', [{ path: input, name: 'resume.bin' }], {
      workerGraceMs: 20_000,
    });
    while (first.stats.inputBytesReceived < 16 * MiB) await new Promise((resolve) => setTimeout(resolve, 5));
    // The worker goes away mid-transfer and comes back with the same data folder and name.
    await first.stop();
    const receivedBefore = first.stats.inputBytesReceived;
    assert.ok(receivedBefore < total, 'cut before the end');
    const second = await startWorker(queue, { workerId: 'resume-worker', dataDir: first.options.dataDir });

    const { result, events, outputs } = await running;
    assert.equal(result.state, 'finished');
    assert.ok(events.some((event) => event.type === 'retry'), 'the client dispatched again');
    const resumedAt = total - second.stats.inputBytesReceived;
    assert.ok(resumedAt > 0, `resumed from offset ${resumedAt}`);
    assert.ok(second.stats.inputBytesReceived < total);
    assert.match(await readFile(join(outputs, 'sum.txt'), 'utf8'), new RegExp(`^${sha256} `));
  });

  test('an output transfer cut mid-way resumes from the bytes the client already has', async () => {
    const queue = randomQueue();
    const first = await startWorker(queue, { workerId: 'resume-out-worker' });
    const signaling = await client(queue);
    const size = 96 * MiB;
    const running = run(signaling, `sh -c "head -c ${size} /dev/urandom > /outputs/big.bin"`, [], { workerGraceMs: 20_000 });
    while (first.stats.outputBytesSent < 16 * MiB) await new Promise((resolve) => setTimeout(resolve, 5));
    // The worker goes away while the output streams, and comes back with its stored result.
    await first.stop();
    const second = await startWorker(queue, { workerId: 'resume-out-worker', dataDir: first.options.dataDir });

    const { result, events, outputs } = await running;
    assert.equal(result.state, 'finished');
    assert.ok(events.some((event) => event.type === 'retry'), 'the client dispatched again');
    assert.equal(second.stats.containersStarted, 0, 'served from the stored result');
    const resumedAt = size - second.stats.outputBytesSent;
    assert.ok(resumedAt > 0 && second.stats.outputBytesSent > 0, `resumed from offset ${resumedAt}`);
    assert.equal((await sha256OfFile(join(outputs, 'big.bin'))).sha256, result.outputs[0]?.sha256);
    assert.equal(existsSync(join(outputs, '.peerdock-partial')), false, 'no partial left behind');
  });

  test('a chunk corrupted on the way is detected and never lands in the cache', async () => {
    const queue = randomQueue();
    const worker = await startWorker(queue);
    const signaling = await client(queue);
    const input = await randomFile(dir, 'corrupt.bin', 4 * MiB);
    const prepared = await prepareInputs([{ path: input, name: 'data/corrupt.bin' }]);
    const definition = buildJobDefinition({ image: TEST_IMAGE, command: 'true' }, prepared.refs);
    const [sha256, honest] = [...prepared.sources][0]!;
    const corrupting: ByteSource = {
      size: honest.size,
      async read(offset, length) {
        const bytes = new Uint8Array(await honest.read(offset, length));
        if (offset <= MiB && MiB < offset + bytes.length) bytes[MiB - offset]! ^= 0xff;
        return bytes;
      },
    };
    const error = await runJob({
      signaling,
      peer: { wrtc: nodeWrtc() },
      jobId: await computeJobId(definition),
      definition,
      inputs: new Map([[sha256, corrupting]]),
      ...outputsDirectory(await tempDir('corrupt-out')),
      waitForWorkerMs: 20_000,
    }).then(
      () => assert.fail('the corrupted input was accepted'),
      (failure) => toPeerdockError(failure),
    );
    await prepared.close();
    assert.equal(error.code, 'ERR_HASH_MISMATCH');
    assert.match(error.message, /"data\/corrupt\.bin"/);
    assert.equal(await worker.store.hasInput(sha256), false);
  });

  test('inputs and outputs over the worker limits fail with the limit and its flag named', async () => {
    const queue = randomQueue();
    await startWorker(queue, { maxInputBytes: MiB, maxOutputBytes: MiB });
    const signaling = await client(queue);
    const input = await randomFile(dir, 'two.bin', 2 * MiB);
    const tooBig = await run(signaling, 'true', [{ path: input, name: 'two.bin' }]).then(
      () => assert.fail('accepted inputs over the limit'),
      (failure) => toPeerdockError(failure),
    );
    assert.equal(tooBig.code, 'ERR_TOO_LARGE');
    assert.match(tooBig.message, /1048576.*--max-input-size/);

    const { result } = await run(signaling, 'sh -c "head -c 2097152 /dev/zero > /outputs/zeros"', []);
    assert.equal(result.state, 'failed');
    assert.equal(result.error?.code, 'ERR_TOO_LARGE');
    assert.match(result.error?.message ?? '', /--max-output-size/);
  });

  test('a receiver that stalls slows the sender instead of filling memory', async () => {
    const queue = randomQueue();
    const worker = await startWorker(queue);
    const signaling = await client(queue);
    const size = 128 * MiB;
    const stallAt = 16 * MiB;
    const baseline = process.memoryUsage().rss;
    let peakRss = baseline;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
    let sentWhenStalled = 0;
    let sentAfterStall = 0;
    const hash = createHash('sha256');
    try {
      const { result } = await run(signaling, `sh -c "head -c ${size} /dev/urandom > /outputs/big.bin"`, [], {
        openOutput: async (): Promise<ByteSink> => {
          let written = 0;
          let stalled = false;
          return {
            async write(chunk) {
              if (!stalled && written >= stallAt) {
                stalled = true;
                sentWhenStalled = worker.stats.outputBytesSent;
                await new Promise((resolve) => setTimeout(resolve, 4000));
                sentAfterStall = worker.stats.outputBytesSent;
              }
              hash.update(chunk);
              written += chunk.byteLength;
            },
            finish: async () => hash.digest('hex'),
            abort: async () => {},
          };
        },
        wantOutput: () => true,
      });
      assert.equal(result.state, 'finished', JSON.stringify(result.error));
      assert.equal(result.outputs[0]?.size, size);
    } finally {
      clearInterval(sampler);
    }
    // While the receiver wrote nothing for 4 s, the sender may only fill its window.
    assert.ok(sentAfterStall - stallAt <= TRANSFER_WINDOW_BYTES + MiB, `sent ${sentAfterStall - stallAt} bytes past the stall`);
    assert.ok(sentWhenStalled <= stallAt + TRANSFER_WINDOW_BYTES + MiB);
    const growthMiB = (peakRss - baseline) / MiB;
    assert.ok(growthMiB < 160, `both ends together grew by ${growthMiB.toFixed(0)} MiB for a ${size / MiB} MiB transfer`);
  });
});
