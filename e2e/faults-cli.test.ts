/**
 * Faults a user meets with `peerdock job …`, end to end with real processes and real Docker:
 * cancel, deadlines, a client killed mid-job and reattached by id, the same job from two clients.
 * Each test names its fault and checks what the user would: outputs, exit code, state, and how
 * many containers Docker created (from the engine's event log).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  docker,
  kill9,
  randomQueue,
  removeTempDirs,
  runCli,
  runJobCli,
  spawnCli,
  startSignal,
  startWorker,
  tempDir,
  waitForText,
  watchContainers,
  type ContainerWatch,
  type Running,
  uniqueJob,
} from './harness.js';

/** Containers (running or not) Docker has for a job right now. */
async function containersOf(jobId: string) {
  return docker.listContainers({ all: true, filters: JSON.stringify({ label: [`io.peerdock.job=${jobId}`] }) });
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** What the container printed so far, read from the engine (a detached job shows no logs). */
async function containerLogs(jobId: string): Promise<string> {
  const [info] = await containersOf(jobId);
  if (!info) return '';
  const buffer = (await docker.getContainer(info.Id).logs({ stdout: true, stderr: true })) as unknown as Buffer;
  return buffer.toString('latin1');
}


describe('faults around job run (CLI processes, real Docker)', () => {
  let signal: Running & { url: string };
  let watch: ContainerWatch;
  const queue = randomQueue();
  const common = () => [queue, '--signal', signal.url, '--wait', '20s'];

  before(async () => {
    watch = await watchContainers();
    signal = await startSignal();
    await startWorker(signal.url, queue, { cores: 2 }).then((worker) => workers.push(worker));
  });
  const workers: Running[] = [];

  after(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await signal?.stop();
    await watch?.stop();
    await removeTempDirs();
  });

  test('cancel: a detached sleep 60 is cancelled by id; its container goes, attach says cancelled and keeps the early logs', { timeout: 90_000 }, async () => {
    const { jobId, flags } = await uniqueJob('sh -c "echo before-cancel; sleep 60"');
    const detached = await runJobCli([...common(), ...flags, '--detach', '--json']);
    assert.equal(detached.code, 0, detached.stderr);
    assert.equal(detached.json?.jobId, jobId);
    assert.ok(['queued', 'pulling', 'running'].includes(String(detached.json?.state)), `detached state: ${detached.json?.state}`);
    // The fault: the user changes their mind while the container runs (and has printed a line).
    await until('the container prints its first line', async () => (await containerLogs(jobId)).includes('before-cancel'), 15_000);

    const cancelledAt = Date.now();
    const cancel = await runCli(['job', 'cancel', ...common(), jobId, '--json']);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.deepEqual(cancel.json, { jobId, state: 'cancelled' });
    await until('the container is gone', async () => (await containersOf(jobId)).length === 0, 8_000);
    const goneAfterMs = Date.now() - cancelledAt;
    assert.ok(goneAfterMs < 8_000, `container gone ${goneAfterMs} ms after the cancel command started`);

    const attach = await runCli(['job', 'attach', ...common(), jobId, '--json', '--outputs', await tempDir('cancel-out')]);
    assert.equal(attach.code, 130, `attach exit code (cancelled is 130)\n${attach.stderr}`);
    assert.equal(attach.json?.state, 'cancelled');
    assert.match(attach.stdout, /before-cancel/, 'the logs printed before the cancel are kept');
    assert.equal(watch.created(jobId), 1);
  });

  test('deadline: --max-duration 2s kills the container; exit 124, state timed-out, the log line and the partial output come back', { timeout: 90_000 }, async () => {
    const dir = await tempDir('deadline');
    const { jobId, flags } = await uniqueJob('sh -c "echo start; echo partial > /outputs/p.txt; sleep 60"', { maxDuration: '2s' });
    const startedAt = Date.now();
    const run = await runJobCli([...common(), ...flags, '--json', '--outputs', dir]);
    const tookMs = Date.now() - startedAt;
    assert.equal(run.code, 124, run.stderr);
    assert.equal(run.json?.state, 'timed-out');
    assert.equal((run.json?.error as { code?: string } | undefined)?.code, 'ERR_JOB_TIMEOUT');
    assert.match(run.stdout, /^start$/m);
    assert.equal(await readFile(join(dir, 'p.txt'), 'utf8'), 'partial\n');
    assert.deepEqual((run.json?.outputs as Array<{ path: string }>).map((file) => file.path), ['p.txt']);
    assert.ok(tookMs < 15_000, `the whole run took ${tookMs} ms for a 2 s deadline`);
    assert.equal(watch.created(jobId), 1);
    assert.equal((await containersOf(jobId)).length, 0, 'the killed container is removed');
  });

  test('deadline: a worker with --max-job-duration 2s caps a job that asks for 60s', { timeout: 90_000 }, async () => {
    const cappedQueue = randomQueue();
    const capped = await startWorker(signal.url, cappedQueue, { cores: 1, extra: ['--max-job-duration', '2s'] });
    workers.push(capped);
    const dir = await tempDir('capped');
    const { flags } = await uniqueJob('sh -c "echo start; echo partial > /outputs/p.txt; sleep 60"', { maxDuration: '60s' });
    const startedAt = Date.now();
    const run = await runJobCli([cappedQueue, '--signal', signal.url, '--wait', '20s', ...flags, '--json', '--outputs', dir]);
    const tookMs = Date.now() - startedAt;
    assert.equal(run.code, 124, run.stderr);
    assert.equal(run.json?.state, 'timed-out');
    assert.match((run.json?.error as { message: string }).message, /\b2s deadline/);
    assert.equal(await readFile(join(dir, 'p.txt'), 'utf8'), 'partial\n');
    assert.ok(tookMs < 15_000, `the whole run took ${tookMs} ms under a 2 s cap`);
  });

  test('client lost: job run is killed -9 mid-job; job attach by id gets the outputs and exit code; one container', { timeout: 90_000 }, async () => {
    const { jobId, flags } = await uniqueJob('sh -c "echo first-line; sleep 3; echo done > /outputs/o.txt; echo last-line; exit 7"');
    const client = spawnCli(['job', 'run', ...common(), ...flags, '--json', '--outputs', await tempDir('lost-client-out')]);
    await waitForText(client, /first-line/, 'job run prints the first log line');
    // The fault: the client process dies without a word (laptop lid, OOM, kill -9).
    await kill9(client);

    const dir = await tempDir('reattach');
    const attach = await runCli(['job', 'attach', ...common(), jobId, '--json', '--outputs', dir]);
    assert.equal(attach.code, 7, attach.stderr);
    assert.equal(attach.json?.state, 'finished');
    assert.equal(attach.json?.exitCode, 7);
    assert.equal(await readFile(join(dir, 'o.txt'), 'utf8'), 'done\n');
    assert.match(attach.stdout, /last-line/, 'live logs after attaching');
    assert.equal(watch.created(jobId), 1, 'the job was not cancelled nor run again');
  });

  test('duplicates: the same job from two clients at once runs once and both get the outputs', { timeout: 90_000 }, async () => {
    const { jobId, flags } = await uniqueJob('sh -c "echo shared-log; sleep 2; echo shared > /outputs/s.txt"');
    const dirs = [await tempDir('dup-a'), await tempDir('dup-b')];
    const runs = await Promise.all(dirs.map((dir) => runJobCli([...common(), ...flags, '--json', '--outputs', dir])));
    for (const [index, run] of runs.entries()) {
      assert.equal(run.code, 0, `client ${index}: ${run.stderr}`);
      assert.equal(run.json?.jobId, jobId);
      assert.equal(run.json?.state, 'finished');
      assert.equal(await readFile(join(dirs[index]!, 's.txt'), 'utf8'), 'shared\n');
    }
    assert.equal(watch.created(jobId), 1, 'one run for both clients');
  });
});
