/**
 * `peerdock job run` end to end: real signaling server, real worker process, real Docker engine,
 * real WebRTC between the two processes.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dialPeer } from '../peer/connect.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import type { Message } from '../protocol/messages.js';
import {
  containersCreatedFor,
  randomQueue,
  removeTempDirs,
  runJobCli,
  startSignal,
  startWorker,
  tempDir,
  TEST_IMAGE,
  type Running,
} from './harness.js';

describe('peerdock job run against a worker', () => {
  let signal: Running & { url: string };
  let worker: Running;
  const queue = randomQueue();
  const common = () => [queue, '--signal', signal.url, '--image', TEST_IMAGE, '--wait', '20s'];

  before(async () => {
    signal = await startSignal();
    worker = await startWorker(signal.url, queue);
  });

  after(async () => {
    await worker?.stop();
    await signal?.stop();
    await removeTempDirs();
  });

  test('prints stdout and stderr live, apart, and exits 0', async () => {
    const run = await runJobCli([...common(), '--command', 'sh -c "echo hello-out; echo hello-err >&2"']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /hello-out/);
    assert.doesNotMatch(run.stdout, /hello-err/);
    assert.match(run.stderr, /hello-err/);
  });

  test('turns an input file into an output file', async () => {
    const dir = await tempDir('job');
    await writeFile(join(dir, 'data.csv'), 'a,b\n1,2\n3,4\n');
    const run = await runJobCli(
      [...common(), '--command', 'sh -c "wc -l /inputs/data.csv > /outputs/count.txt"', '--input', './data.csv', '--outputs', './out', '--json'],
      { cwd: dir },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await readFile(join(dir, 'out', 'count.txt'), 'utf8')).trim(), '3 /inputs/data.csv');
    assert.equal(run.json?.state, 'finished');
    // On loopback the worker is reached directly (its side may show as host or peer-reflexive).
    assert.equal((run.json?.connection as { kind?: string } | undefined)?.kind, 'direct');
    const outputs = run.json?.outputs as Array<{ path: string; size: number; sha256: string }>;
    assert.deepEqual(
      outputs.map((file) => file.path),
      ['count.txt'],
    );
    assert.match(outputs[0]!.sha256, /^[0-9a-f]{64}$/);
  });

  test('keeps nested output paths and renames inputs with FILE=NAME', async () => {
    const dir = await tempDir('job');
    await writeFile(join(dir, 'local.txt'), 'payload');
    const run = await runJobCli(
      [
        ...common(),
        '--command',
        'sh -c "mkdir -p /outputs/a/b && cat /inputs/sub/renamed.txt > /outputs/a/b/c.txt && echo top > /outputs/top.txt"',
        '--input',
        'local.txt=sub/renamed.txt',
        '--outputs',
        'out',
        '--json',
      ],
      { cwd: dir },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await readFile(join(dir, 'out', 'a', 'b', 'c.txt'), 'utf8'), 'payload');
    assert.equal(await readFile(join(dir, 'out', 'top.txt'), 'utf8'), 'top\n');
    assert.deepEqual((run.json?.outputs as Array<{ path: string }>).map((file) => file.path).sort(), ['a/b/c.txt', 'top.txt']);
  });

  test('passes a non-zero exit code through', async () => {
    const run = await runJobCli([...common(), '--command', 'sh -c "echo failing; exit 3"', '--json']);
    assert.equal(run.code, 3);
    assert.equal(run.json?.state, 'finished');
    assert.equal(run.json?.exitCode, 3);
  });

  test('an image that cannot be found is a failed job with a clear error', async () => {
    // A registry address on loopback where nothing listens: the pull fails at once, offline.
    const run = await runJobCli([queue, '--signal', signal.url, '--image', '127.0.0.1:9/peerdock/missing:1', '--json']);
    assert.equal(run.code, 125);
    assert.equal(run.json?.state, 'failed');
    const error = run.json?.error as { code: string; message: string };
    assert.equal(error.code, 'ERR_IMAGE_NOT_FOUND');
    assert.match(error.message, /127\.0\.0\.1:9\/peerdock\/missing:1/);
  });

  test('the same job again is served from the stored result without a new container', async () => {
    const dir = await tempDir('job');
    await writeFile(join(dir, 'in.txt'), `unique ${Math.random()}\n`);
    const args = [...common(), '--command', 'sh -c "cat /inputs/in.txt; cp /inputs/in.txt /outputs/copy.txt"', '--input', 'in.txt', '--json'];
    const since = Math.floor(Date.now() / 1000) - 1;
    const first = await runJobCli([...args, '--outputs', 'first'], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.json?.cached, false);
    const jobId = String(first.json?.jobId);
    assert.equal(await containersCreatedFor(jobId, since), 1);

    const second = await runJobCli([...args, '--outputs', 'second'], { cwd: dir });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.json?.cached, true);
    assert.equal(second.json?.jobId, jobId);
    assert.match(second.stdout, /unique/, 'the stored logs are replayed');
    assert.equal(await readFile(join(dir, 'second', 'copy.txt'), 'utf8'), await readFile(join(dir, 'in.txt'), 'utf8'));
    assert.equal(await containersCreatedFor(jobId, since), 1, 'no second container');
  });

  test('a client that does not know the queue cannot get anything run', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const run = await runJobCli([`${queue}-wrong`, '--signal', signal.url, '--image', TEST_IMAGE, '--command', 'echo nope', '--wait', '2s', '--json']);
    assert.equal(run.code, 125);
    assert.equal((run.json?.error as { code: string }).code, 'ERR_NO_WORKER');
    assert.equal(await containersCreatedFor(String(run.json?.jobId), since), 0);
  });

  test('an input named ../x is refused by the client', async () => {
    const dir = await tempDir('job');
    await writeFile(join(dir, 'x'), 'x');
    const run = await runJobCli([...common(), '--command', 'true', '--input', 'x=../x'], { cwd: dir });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /ERR_INPUT_NAME: .*climbs out/);
  });

  test('an input named ../x is refused by the worker too, even from a client that skips the checks', async () => {
    const signaling = await SignalingClient.connect({ url: signal.url, queue, role: 'client' });
    try {
      const target = signaling.workers[0] ?? (await new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no worker')), 5000)));
      const { link } = await dialPeer(signaling, target.socketId, { wrtc: nodeWrtc() });
      const answer = new Promise<Message>((resolve) => link.onMessage(resolve));
      const hostile = {
        t: 'submit',
        v: 1,
        jobId: '0'.repeat(64),
        definition: { image: TEST_IMAGE, inputs: { '../x': { sha256: 'a'.repeat(64), size: 1 } } },
      } as unknown as Message;
      link.send(hostile);
      const reply = await answer;
      assert.equal(reply.t, 'error');
      assert.equal((reply as { code: string }).code, 'ERR_BAD_MESSAGE');
      assert.match((reply as { message: string }).message, /climbs out/);
      link.close();
    } finally {
      signaling.close();
    }
  });
});
