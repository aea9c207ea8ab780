/**
 * The Chromium side of bench:transfer, bundled by bench/browser-build.ts with the frame's esbuild
 * options. It runs in the page exactly what the frame runs: SignalingClient, dialPeer (through
 * runJob), Link, blobSource / blobSink; plus the raw simple-peer baseline.
 */
import { blobRef, blobSink, blobSource } from '../client/browser-files.js';
import { runJob, type JobEvent } from '../client/run-job.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { buildJobDefinition, computeJobId, type FileRef, type JobSpec } from '../protocol/job.js';
import type { ByteSource } from '../protocol/link.js';
import { dialRaw, type RawEndpoint } from './raw-channel.js';

const TEST_IMAGE = 'peerdock-test/busybox:latest';
let raw: RawEndpoint | undefined;
let client: SignalingClient | undefined;

const epoch = (t: number) => performance.timeOrigin + t;

function nonce(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function randomBlob(bytes: number): Blob {
  const parts: Uint8Array[] = [];
  const step = 4 * 1024 * 1024;
  for (let offset = 0; offset < bytes; offset += step) {
    const part = new Uint8Array(Math.min(step, bytes - offset));
    for (let i = 0; i < part.length; i += 65536) crypto.getRandomValues(part.subarray(i, i + 65536));
    parts.push(part);
  }
  return new Blob(parts as Uint8Array<ArrayBuffer>[]);
}

async function job(
  spec: JobSpec,
  refs: Record<string, FileRef>,
  sources: Map<string, ByteSource>,
  onEvent: (event: JobEvent, now: number) => void,
  onOpenOutput?: () => void,
) {
  if (!client) throw new Error('benchConnect first');
  const definition = buildJobDefinition(spec, refs);
  const jobId = await computeJobId(definition);
  const result = await runJob({
    signaling: client,
    jobId,
    definition,
    inputs: sources,
    openOutput: (file) => {
      onOpenOutput?.();
      return blobSink({ expectSha256: file.sha256 });
    },
    onEvent: (event) => {
      if (event.type === 'retry') console.error(`runJob retry ${event.attempt}: ${event.reason}`);
      onEvent(event, performance.now());
    },
  });
  const endedAt = performance.now();
  if (result.state !== 'finished' || result.exitCode !== 0) throw new Error(`job ${result.state}: ${JSON.stringify(result.error ?? {})}`);
  return { ...result, endedAt };
}

const api = {
  async rawDial(url: string, queue: string) {
    const signaling = await SignalingClient.connect({ url, queue, role: 'client' });
    raw = await dialRaw(signaling);
    return true;
  },
  async rawSend(bytes: number) {
    const from = performance.now();
    await raw!.send(bytes);
    const to = performance.now();
    return { bytes, ms: to - from, from: epoch(from), to: epoch(to) };
  },
  async connect(url: string, queue: string) {
    client = await SignalingClient.connect({ url, queue, role: 'client' });
    const deadline = Date.now() + 20_000;
    while (client.workers.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return client.workers.length;
  },
  /** Makes a random Blob input and hashes it (not timed); returns its size. */
  async prepareUpload(bytes: number) {
    const blob = randomBlob(bytes);
    const ref = await blobRef(blob);
    (globalThis as unknown as { benchInput: unknown }).benchInput = { blob, ref };
    return ref.size;
  },
  async upload() {
    const { blob, ref } = (globalThis as unknown as { benchInput: { blob: Blob; ref: FileRef } }).benchInput;
    const times: Record<string, number> = {};
    let uploaded = 0;
    await job(
      { image: TEST_IMAGE, command: ['sh', '-c', 'test -s /inputs/x'], env: { NONCE: nonce() } },
      { x: ref },
      new Map([[ref.sha256, blobSource(blob)]]),
      (event, now) => {
        if (event.type === 'state' && event.state === 'sending-inputs') times.start = now;
        else if (event.type === 'state' && times.start !== undefined && times.verified === undefined) times.verified = now;
        else if (event.type === 'upload') {
          times.lastChunk = now;
          uploaded = event.done;
        }
      },
    );
    return {
      bytes: uploaded,
      ms: times.verified! - times.start!,
      lastChunkMs: times.lastChunk! - times.start!,
      from: epoch(times.start!),
      to: epoch(times.verified!),
    };
  },
  /** Diagnostic: blobSource alone, reading the prepared input in 64 KiB slices one after another. */
  async readRate() {
    const { blob } = (globalThis as unknown as { benchInput: { blob: Blob } }).benchInput;
    const source = blobSource(blob);
    const started = performance.now();
    for (let offset = 0; offset < blob.size; offset += 65532) await source.read(offset, Math.min(65532, blob.size - offset));
    return { bytes: blob.size, ms: performance.now() - started };
  },
  /** Diagnostic: blobSink alone (hash-wasm sha256 + Blob parts), fed 64 KiB chunks from memory. */
  async sinkRate(bytes: number) {
    const chunk = new Uint8Array(65532);
    crypto.getRandomValues(chunk);
    const sink = blobSink();
    const started = performance.now();
    for (let done = 0; done < bytes; done += chunk.length) await sink.write(chunk);
    await sink.finish();
    return { bytes, ms: performance.now() - started };
  },
  async download(bytes: number) {
    const times: Record<string, number> = {};
    let size = 0;
    const result = await job(
      { image: TEST_IMAGE, command: ['sh', '-c', `head -c ${bytes} /dev/urandom > /outputs/out.bin`], env: { NONCE: nonce() } },
      {},
      new Map(),
      (event) => {
        if (event.type === 'download') size = event.total;
      },
      () => (times.opened = performance.now()),
    );
    return { bytes: size, ms: result.endedAt - times.opened!, from: epoch(times.opened!), to: epoch(result.endedAt) };
  },
};

(globalThis as unknown as { bench: typeof api }).bench = api;
document.title = 'bench ready';
