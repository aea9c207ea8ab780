/**
 * An image the worker does not have: it is pulled from a registry on 127.0.0.1:5000 (Debian's
 * docker-registry, started outside the test network namespace by `bash scripts/start-registry.sh`,
 * which .ci/run does), and the client sees the pull's progress before the job runs.
 * The test reaches the registry only through dockerd (push and pull), never directly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { outputsDirectory } from '../client/node-files-for-job.js';
import { runJob, type JobEvent } from '../client/run-job.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { buildJobDefinition, computeJobId } from '../protocol/job.js';
import { startSignalingServer, type SignalingServer } from '../signaling/server.js';
import { PeerdockWorker } from '../worker/worker.js';
import { docker, randomQueue, removeTempDirs, tempDir, TEST_IMAGE, watchContainers } from './harness.js';

const REGISTRY = '127.0.0.1:5000';
const BLOB_BYTES = 12 * 1024 * 1024;

/** Follows a push/pull stream to its end; an error event in it is thrown. */
async function followStream(stream: NodeJS.ReadableStream): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, events: Array<{ error?: string }>) => {
      const failure = error?.message ?? events?.find((event) => event.error)?.error;
      if (failure) reject(new Error(failure));
      else resolve();
    }),
  );
}

/**
 * Builds an image with a fresh random layer on top of the test image, pushes it to the registry
 * and removes it locally, so the worker must download that layer. Returns its name, or why the
 * registry could not be used.
 */
async function pushFreshImage(): Promise<{ image: string } | { problem: string }> {
  const repo = `${REGISTRY}/peerdock-test/pull`;
  const tag = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const image = `${repo}:${tag}`;
  const container = await docker.createContainer({
    Image: TEST_IMAGE,
    Cmd: ['sh', '-c', `head -c ${BLOB_BYTES} /dev/urandom > /blob`],
    HostConfig: { NetworkMode: 'none' },
  });
  try {
    await container.start();
    await container.wait();
    await container.commit({ repo, tag });
  } finally {
    await container.remove({ force: true }).catch(() => {});
  }
  try {
    await followStream(await docker.getImage(image).push({ authconfig: { serveraddress: REGISTRY } }));
  } catch (error) {
    await docker.getImage(image).remove({ force: true }).catch(() => {});
    return { problem: `pushing ${image} failed: ${(error as Error).message}` };
  }
  await docker.getImage(image).remove({ force: true });
  return { image };
}

describe('image pull progress from a local registry', () => {
  let server: SignalingServer;
  let worker: PeerdockWorker;
  let signaling: SignalingClient;
  let image: string | undefined;
  let problem: string | undefined;
  let pullEvents: Array<Extract<JobEvent, { type: 'pull' }>> | undefined;

  before(async () => {
    const pushed = await pushFreshImage();
    if ('problem' in pushed) problem = pushed.problem;
    else image = pushed.image;
  });

  after(async () => {
    signaling?.close();
    await worker?.stop();
    await server?.close();
    if (image) await docker.getImage(image).remove({ force: true }).catch(() => {});
    await removeTempDirs();
  });

  test('an image missing on the worker is pulled with progress: pulling → running → finished', { timeout: 90_000 }, async (t) => {
    if (!image) {
      const message = `no registry answers on ${REGISTRY} through dockerd (${problem}); start one with: bash scripts/start-registry.sh`;
      if (process.env.CI) assert.fail(message);
      return t.skip(message);
    }
    server = await startSignalingServer({ port: 0, host: '127.0.0.1' });
    const queue = randomQueue();
    worker = new PeerdockWorker({
      signalUrl: server.url,
      queue,
      workerId: `pull-${Math.random().toString(36).slice(2, 8)}`,
      cores: 1,
      dataDir: await tempDir('pull-worker'),
      maxJobDurationSeconds: 60,
      maxInputBytes: 1024 ** 2,
      maxOutputBytes: 1024 ** 2,
      maxLogBytes: 1024 ** 2,
      wrtc: nodeWrtc(),
    });
    await worker.start();
    signaling = await SignalingClient.connect({ url: server.url, queue, role: 'client' });
    const definition = buildJobDefinition({ image, command: 'sh -c "wc -c < /blob"' }, {});
    const jobId = await computeJobId(definition);
    const watch = await watchContainers();
    const events: JobEvent[] = [];
    const result = await runJob({
      signal: AbortSignal.timeout(60_000),
      signaling,
      peer: { wrtc: nodeWrtc() },
      jobId,
      definition,
      inputs: new Map(),
      ...outputsDirectory(await tempDir('pull-out')),
      waitForWorkerMs: 20_000,
      onEvent: (event) => events.push(event),
    }).finally(() => watch.stop());

    assert.equal(result.state, 'finished', JSON.stringify(result.error));
    assert.equal(result.exitCode, 0);
    const logs = events.flatMap((event) => (event.type === 'log' ? [event.data] : [])).join('');
    assert.equal(logs.trim(), String(BLOB_BYTES), 'the job ran on the pulled image');
    const pulls = events.filter((event): event is Extract<JobEvent, { type: 'pull' }> => event.type === 'pull');
    assert.ok(pulls.length > 0, 'pull events reached the client');
    const states = events.flatMap((event) => (event.type === 'state' ? [event.state] : []));
    const order = (['pulling', 'running'] as const).map((state) => states.indexOf(state));
    assert.ok(order[0]! >= 0 && order[1]! > order[0]!, `states in order pulling → running: ${states.join(' → ')}`);
    const firstPull = events.findIndex((event) => event.type === 'pull');
    assert.ok(firstPull > events.findIndex((event) => event.type === 'state' && event.state === 'pulling'), 'pull events come after the pulling state');
    assert.ok(firstPull < events.findIndex((event) => event.type === 'state' && event.state === 'running'), 'and before running');
    assert.equal(watch.created(jobId), 1);
    t.diagnostic(`pull events: ${pulls.map((event) => `${event.status} ${event.current}/${event.total}`).join(' | ')}`);
    pullEvents = pulls;
  });

  test(
    'the pull progress the client sees counts the bytes of the 12 MiB layer, up to complete',
    {},
    () => {
      assert.ok(pullEvents, 'measured by the test above');
      assert.ok(pullEvents.some((event) => event.total >= BLOB_BYTES), `a pull event carries the layer size: ${JSON.stringify(pullEvents)}`);
      const last = pullEvents.at(-1)!;
      assert.ok(last.total > 0 && last.current === last.total, `the last pull event says complete: ${JSON.stringify(last)}`);
    },
  );
});
