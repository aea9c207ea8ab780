/**
 * Faults of the machines around a job, with real processes, real Docker and real `kill -9`:
 * a worker killed and restarted, a worker killed for good (redispatch), the signaling server
 * killed and restarted, SIGTERM drain, and 20 jobs on a 2-core worker. Each test names its fault
 * and checks what the user would: outputs, exit code, state, containers Docker created.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { outputsDirectory } from '../client/node-files-for-job.js';
import { runJob, type JobEvent } from '../client/run-job.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import type { JobDefinition } from '../protocol/job.js';
import {
  docker,
  kill9,
  maxConcurrency,
  portOf,
  randomQueue,
  removeTempDirs,
  runJobCli,
  spawnCli,
  startSignal,
  startSignalOnPort,
  startWorker,
  tempDir,
  waitForText,
  watchContainers,
  type ContainerWatch,
  type Running,
  uniqueJob,
} from './harness.js';

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}


/** Removes containers a killed worker left behind (a worker that never comes back cannot). */
async function removeContainersOf(workerId: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`io.peerdock.worker=${workerId}`] }) });
  await Promise.all(list.map((info) => docker.getContainer(info.Id).remove({ force: true }).catch(() => {})));
  const networks = await docker.listNetworks({ filters: JSON.stringify({ label: [`io.peerdock.worker=${workerId}`] }) });
  await Promise.all(networks.map((info) => docker.getNetwork(info.Id).remove().catch(() => {})));
}

describe('faults of workers and the signaling server (real processes, real Docker, kill -9)', () => {
  const processes: Running[] = [];
  const clients: SignalingClient[] = [];
  const killedWorkers: string[] = [];
  let signal: Running & { url: string };
  let watch: ContainerWatch;
  /** How long clients took to notice a worker killed -9, measured by the tests that kill one. */
  const timings: { restartNoticedMs?: number; lostNoticedMs?: number } = {};

  before(async () => {
    watch = await watchContainers();
    signal = await startSignal();
    processes.push(signal);
  });

  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(processes.map((running) => running.stop()));
    for (const workerId of killedWorkers) await removeContainersOf(workerId);
    await watch?.stop();
    await removeTempDirs();
  });

  async function worker(queue: string, options: Parameters<typeof startWorker>[2] = {}, url = signal.url) {
    const running = await startWorker(url, queue, options);
    processes.push(running);
    return running;
  }

  async function client(queue: string, url = signal.url): Promise<SignalingClient> {
    const signaling = await SignalingClient.connect({ url, queue, role: 'client' });
    clients.push(signaling);
    return signaling;
  }

  /** runJob in this process, outputs to a fresh folder, every event kept. */
  async function runInProcess(signaling: SignalingClient, jobId: string, definition: JobDefinition, extra: { workerGraceMs?: number } = {}) {
    const outputs = await tempDir('faults-out');
    const events: JobEvent[] = [];
    const result = await runJob({
      signaling,
      peer: { wrtc: nodeWrtc() },
      jobId,
      definition,
      inputs: new Map(),
      ...outputsDirectory(outputs),
      waitForWorkerMs: 20_000,
      onEvent: (event) => events.push(event),
      ...extra,
    });
    return { result, events, outputs };
  }

  test('worker killed -9 mid-job and restarted on the same data folder: the job completes once, the client keeps running', { timeout: 90_000 }, async () => {
    const queue = randomQueue();
    const first = await worker(queue, { cores: 1 });
    const { jobId, flags } = await uniqueJob('sh -c "echo begin; sleep 5; echo done > /outputs/r.txt; echo end; exit 3"');
    const dir = await tempDir('restart-out');
    const run = spawnCli(['job', 'run', queue, '--signal', signal.url, '--wait', '20s', ...flags, '--json', '--outputs', dir, '--verbose']);
    await waitForText(run, /begin/, 'job run prints the first line');
    // The fault: the worker process dies hard; its container keeps running.
    await kill9(first);
    const killedAt = Date.now();
    const second = await worker(queue, { cores: 1, dataDir: first.dataDir, id: first.id });

    // How long the client took to notice (the --verbose note); measured for the test below.
    await waitForText(run, /lost worker/, 'job run notices the lost worker', 60_000);
    timings.restartNoticedMs = Date.now() - killedAt;
    const outcome = await run.done;
    assert.equal(outcome.code, 3, `${outcome.stderr}\nworker after restart:\n${second.output()}`);
    assert.equal(outcome.json?.state, 'finished');
    assert.equal(outcome.json?.exitCode, 3);
    assert.equal(await readFile(join(dir, 'r.txt'), 'utf8'), 'done\n');
    assert.match(outcome.stdout, /end/, 'logs after the restart reach the client');
    assert.match(second.output(), /adopted/);
    assert.equal(watch.created(jobId), 1, 'the job never ran twice');
  });

  test('worker killed -9 for good, a second worker in the queue: the client dispatches again and the job completes there', { timeout: 90_000 }, async () => {
    const queue = randomQueue();
    const [a, b] = await Promise.all([worker(queue, { cores: 1 }), worker(queue, { cores: 1 })]);
    const byId = new Map([a, b].map((running) => [running.id, running]));
    const signaling = await client(queue);
    await until('both workers are present', async () => signaling.workers.length === 2, 10_000);
    const { jobId, definition } = await uniqueJob('sh -c "echo go; sleep 3; echo fin > /outputs/f.txt; echo fin-log"');
    const outputs = await tempDir('redispatch-out');
    const events: JobEvent[] = [];
    const running = runJob({
      signaling,
      peer: { wrtc: nodeWrtc() },
      jobId,
      definition,
      inputs: new Map(),
      ...outputsDirectory(outputs),
      waitForWorkerMs: 20_000,
      // A short grace for a lost worker to come back (the CLI waits the default 10 s).
      workerGraceMs: 2_000,
      onEvent: (event) => events.push(event),
    });
    running.catch(() => {});
    await until('the job runs', async () => events.some((event) => event.type === 'log' && event.data.includes('go')), 15_000);
    const first = events.find((event): event is Extract<JobEvent, { type: 'worker' }> => event.type === 'worker')!.workerId;
    // The fault: the worker running the job vanishes and never comes back.
    killedWorkers.push(first);
    await kill9(byId.get(first)!);
    const killedAt = Date.now();
    await until('the client notices', async () => events.some((event) => event.type === 'retry'), 60_000, 50);
    timings.lostNoticedMs = Date.now() - killedAt;

    const result = await running;
    const other = first === a.id ? b.id : a.id;
    assert.equal(result.state, 'finished');
    assert.equal(result.exitCode, 0);
    assert.equal(result.workerId, other, 'finished on the other worker');
    assert.equal(await readFile(join(outputs, 'f.txt'), 'utf8'), 'fin\n');
    const retry = events.find((event): event is Extract<JobEvent, { type: 'retry' }> => event.type === 'retry')!;
    assert.equal(retry.workerId, first, 'the user is told which worker was lost');
    assert.equal(events.filter((event) => event.type === 'retry').length, 1);
    assert.equal(events.filter((event) => event.type === 'log' && event.data.includes('fin-log')).length, 1, 'the end of the logs arrives once');
    const created = watch.events.filter((event) => event.action === 'create' && event.jobId === jobId);
    assert.deepEqual(created.map((event) => event.workerId), [first, other], 'one container on the lost worker, then one on the second');
  });

  test('signaling server killed -9 and restarted on its port while a job streams logs: all 8 lines arrive, exit 0', { timeout: 90_000 }, async () => {
    const own = await startSignal();
    processes.push(own);
    const queue = randomQueue();
    await worker(queue, { cores: 1 }, own.url);
    const { jobId, flags } = await uniqueJob("sh -c 'for i in $(seq 1 8); do echo line $i; sleep 0.5; done'");
    const run = spawnCli(['job', 'run', queue, '--signal', own.url, '--wait', '20s', ...flags, '--json', '--outputs', await tempDir('signal-out')]);
    await waitForText(run, /line 1\b/, 'job run prints the first line');
    // The fault: the signaling server dies mid-job and comes back on the same port.
    await kill9(own);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const restarted = await startSignalOnPort(portOf(own.url));
    processes.push(restarted);

    const outcome = await run.done;
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.equal(outcome.json?.state, 'finished');
    assert.deepEqual(
      outcome.stdout.split('\n').filter((line) => line.startsWith('line ')),
      Array.from({ length: 8 }, (_, index) => `line ${index + 1}`),
    );
    assert.equal(watch.created(jobId), 1);
    // The worker found the restarted server on its own: a new job gets through.
    const again = await runJobCli([queue, '--signal', restarted.url, '--wait', '20s', ...(await uniqueJob('echo after-restart')).flags]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /after-restart/);
  });

  test('20 jobs from two clients at once on a --cores 2 worker: all complete, none lost, at most (and at least) 2 containers at a time', { timeout: 90_000 }, async () => {
    const queue = randomQueue();
    const busy = await worker(queue, { cores: 2 });
    const signalings = await Promise.all([client(queue), client(queue)]);
    await Promise.all(signalings.map((signaling) => until('the worker is present', async () => signaling.workers.length === 1, 10_000)));
    const jobs = await Promise.all(
      Array.from({ length: 20 }, async (_, index) => ({ index, client: index % 2, ...(await uniqueJob(`sh -c "sleep 0.3; echo ${index} > /outputs/n.txt"`)) })),
    );
    const results = await Promise.all(jobs.map((job) => runInProcess(signalings[job.client]!, job.jobId, job.definition)));
    for (const [index, { result, outputs }] of results.entries()) {
      assert.equal(result.state, 'finished', `job ${index}: ${JSON.stringify(result.error)}`);
      assert.equal(result.exitCode, 0);
      assert.equal(await readFile(join(outputs, 'n.txt'), 'utf8'), `${index}\n`);
    }
    await new Promise((resolve) => setTimeout(resolve, 300)); // the last events trail the results a little
    const timeline = watch.events.filter((event) => event.workerId === busy.id);
    assert.equal(timeline.filter((event) => event.action === 'create').length, 20, 'one container per job');
    assert.equal(new Set(timeline.filter((event) => event.action === 'start').map((event) => event.jobId)).size, 20);
    assert.equal(maxConcurrency(timeline), 2);
  });

  test('SIGTERM drain: the running job finishes and is delivered; the queued one and a later one go to another worker', { timeout: 90_000 }, async () => {
    const queue = randomQueue();
    const draining = await worker(queue, { cores: 1, extra: ['--shutdown-grace', '20s'] });
    const common = [queue, '--signal', signal.url, '--wait', '20s', '--json', '--verbose'];
    const jobA = await uniqueJob('sh -c "echo a-started; sleep 3; echo a > /outputs/a.txt"');
    const jobB = await uniqueJob('sh -c "echo b > /outputs/b.txt"');
    const jobC = await uniqueJob('sh -c "echo c > /outputs/c.txt"');
    const dirs = { a: await tempDir('drain-a'), b: await tempDir('drain-b'), c: await tempDir('drain-c') };
    const runA = spawnCli(['job', 'run', ...common, ...jobA.flags, '--outputs', dirs.a]);
    await waitForText(runA, /a-started/, 'job A runs');
    const runB = spawnCli(['job', 'run', ...common, ...jobB.flags, '--outputs', dirs.b]);
    await waitForText(runB, /queued on worker/, 'job B waits behind A');
    const other = await worker(queue, { cores: 2 });

    // The fault: the operator stops the worker (SIGTERM) with a job running and one waiting.
    const exited = new Promise<number | null>((resolve) => draining.process.once('exit', (code) => resolve(code)));
    const termAt = Date.now();
    draining.process.kill('SIGTERM');
    await waitForText(draining, /SIGTERM: taking no more jobs/, 'the worker acknowledges SIGTERM', 5_000);
    const runC = spawnCli(['job', 'run', ...common, ...jobC.flags, '--outputs', dirs.c]);

    const [a, b, c] = await Promise.all([runA.done, runB.done, runC.done]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(await readFile(join(dirs.a, 'a.txt'), 'utf8'), 'a\n');
    assert.equal(await exited, 0, `the drained worker exits cleanly:\n${draining.output()}`);
    assert.ok(
      Date.now() - termAt < 20_000,
      `the worker did not wait out the whole grace period\nA: ${a.stderr}\nB: ${b.stderr}\nC: ${c.stderr}\ndraining worker:\n${draining.output()}`,
    );
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /dispatching again/, 'the user sees job B was handed back');
    assert.equal(await readFile(join(dirs.b, 'b.txt'), 'utf8'), 'b\n');
    assert.equal(c.code, 0, c.stderr);
    assert.equal(await readFile(join(dirs.c, 'c.txt'), 'utf8'), 'c\n');
    for (const [name, job] of Object.entries({ A: jobA, B: jobB, C: jobC })) {
      const created = watch.events.filter((event) => event.action === 'create' && event.jobId === job.jobId).map((event) => event.workerId);
      assert.equal(created.length, 1, `job ${name} created on ${created.join(', ')} (draining ${draining.id}, other ${other.id})\nA: ${a.stderr}\nB: ${b.stderr}\nC: ${c.stderr}\ndraining worker:\n${draining.output()}\nother worker:\n${other.output()}`);
    }
    const onOther = watch.events.filter((event) => event.action === 'create' && event.workerId === other.id);
    assert.deepEqual(onOther.map((event) => event.jobId).sort(), [jobB.jobId, jobC.jobId].sort(), 'B and C ran on the other worker');
  });

  test(
    'a worker killed -9 is noticed by its client within 8 s (the link liveness check, not ICE giving up after ~30 s)',
    {},
    () => {
      assert.ok(timings.restartNoticedMs !== undefined && timings.lostNoticedMs !== undefined, 'measured by the two kill -9 tests above');
      assert.ok(timings.restartNoticedMs < 8_000, `noticed the killed (then restarted) worker after ${timings.restartNoticedMs} ms`);
      assert.ok(timings.lostNoticedMs < 8_000, `noticed the killed worker after ${timings.lostNoticedMs} ms`);
    },
  );
});
