/**
 * `npm run bench:job`: how long a trivial job takes from submit to result on a warm connection
 * (one signaling client reused; runJob dials the worker per job, as the CLI and the frame do),
 * next to plain `docker run --rm` of the same container, and the replay of a cached result.
 * A measurement, not a test: exits 0 whatever the numbers.
 *
 * Environment knob: BENCH_JOB_RUNS (10).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { startSignalingServer, type SignalingServer } from '../signaling/server.js';
import { fmt, log, median, startAgent, table, TEST_IMAGE, type Agent } from './lib.js';

const N = Math.max(1, Number(process.env.BENCH_JOB_RUNS ?? 10));

interface Trivial {
  ms: number;
  phases: Record<string, number>;
  containerMs?: number;
  cached: boolean;
}

const stats = (values: number[]) =>
  values.length ? `${fmt(median(values), 0)} [${fmt(Math.min(...values), 0)}–${fmt(Math.max(...values), 0)}]` : 'n/a';

async function main(): Promise<void> {
  const temp = await mkdtemp(join(tmpdir(), 'peerdock-bench-job-'));
  const docker = new Docker();
  let server: SignalingServer | undefined;
  let worker: Agent | undefined;
  let client: Agent | undefined;
  const loadBefore = loadavg();
  try {
    await docker.ping().catch(() => {
      throw new Error('Docker is not reachable: run `bash scripts/start-dockerd.sh` (as root)');
    });
    server = await startSignalingServer({ port: 0, host: '127.0.0.1', iceServers: [] });
    [worker, client] = await Promise.all([startAgent('worker'), startAgent('client')]);
    const queue = `bench-job-${crypto.randomUUID()}`;
    await worker.call('worker-start', { url: server.url, queue, dataDir: join(temp, 'worker-data') });
    await client.call('client-connect', { url: server.url, queue });

    // Warm-up (not counted): first dial, first container, image metadata in Docker's caches.
    await client.call<Trivial>('job-trivial', { command: 'echo warm-up' });
    spawnSync('docker', ['run', '--rm', TEST_IMAGE, 'echo', 'hi'], { stdio: 'ignore' });

    const peerdock: Trivial[] = [];
    const dockerRun: number[] = [];
    // Interleaved, so both see the same machine.
    for (let i = 1; i <= N; i++) {
      const run = await client.call<Trivial>('job-trivial', { command: `echo ${i}` });
      if (run.cached) throw new Error('a fresh job was answered from the cache');
      peerdock.push(run);
      const started = performance.now();
      const plain = spawnSync('docker', ['run', '--rm', TEST_IMAGE, 'echo', 'hi'], { encoding: 'utf8' });
      dockerRun.push(performance.now() - started);
      if (plain.status !== 0 || plain.stdout.trim() !== 'hi') throw new Error(`docker run failed: ${plain.stderr}`);
      log(`run ${i}: peerdock ${fmt(run.ms, 0)} ms, docker run ${fmt(dockerRun.at(-1)!, 0)} ms`);
    }

    // Where the difference goes: the worker makes a bridge network per job (icc off) and runs a
    // hardened container on it; time the same Docker operations from the CLI.
    const networkMs: number[] = [];
    const hardenedMs: number[] = [];
    for (let i = 0; i < N; i++) {
      const name = `peerdock-bench-net-${i}-${Date.now()}`;
      const started = performance.now();
      const created = spawnSync('docker', ['network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', '--label', 'io.peerdock.bench=1', name], { stdio: 'ignore' });
      const removed = spawnSync('docker', ['network', 'rm', name], { stdio: 'ignore' });
      networkMs.push(performance.now() - started);
      if (created.status !== 0 || removed.status !== 0) throw new Error('docker network create/rm failed');
      const net = `${name}-run`;
      spawnSync('docker', ['network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', '--label', 'io.peerdock.bench=1', net], { stdio: 'ignore' });
      const begun = performance.now();
      const hardened = spawnSync(
        'docker',
        ['run', '--rm', '--network', net, '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--pids-limit', '512', '--memory', '2g', '--cpus', '1', TEST_IMAGE, 'echo', 'hi'],
        { encoding: 'utf8' },
      );
      hardenedMs.push(performance.now() - begun);
      spawnSync('docker', ['network', 'rm', net], { stdio: 'ignore' });
      if (hardened.status !== 0) throw new Error(`hardened docker run failed: ${hardened.stderr}`);
    }

    const fixedNonce = 'replay-me';
    await client.call<Trivial>('job-trivial', { command: 'echo replay', nonce: fixedNonce });
    const replays: Trivial[] = [];
    for (let i = 0; i < N; i++) {
      const run = await client.call<Trivial>('job-trivial', { command: 'echo replay', nonce: fixedNonce });
      if (!run.cached) throw new Error('the same job again was not replayed from the cache');
      replays.push(run);
    }
    const counters = await worker.call<Record<string, number>>('worker-stats');

    const phase = (runs: Trivial[], name: string) => runs.map((run) => run.phases[name]).filter((v): v is number => v !== undefined);
    const rows = [
      ['peerdock trivial job (submit → result, warm signaling)', stats(peerdock.map((run) => run.ms))],
      ['  of which: dial + submit → "queued"', stats(phase(peerdock, 'queued'))],
      ['  of which: submit → "running" (container started)', stats(phase(peerdock, 'running'))],
      ['  container run as timed by the worker (durationMs)', stats(peerdock.map((run) => run.containerMs ?? NaN).filter(Number.isFinite))],
      [`docker run --rm ${TEST_IMAGE} echo hi`, stats(dockerRun)],
      ['  docker network create (icc off) + rm, as the worker does per job', stats(networkMs)],
      ['  docker run --rm with the worker\'s hardening, on such a network', stats(hardenedMs)],
      ['peerdock replay of a cached result (same job again)', stats(replays.map((run) => run.ms))],
    ];
    const out = [
      '',
      `peerdock bench:job — ${new Date().toISOString()}, node ${process.version}, loopback only, N=${N} each (median [min–max], ms)`,
      '',
      table(['what', 'ms'], rows),
      '',
      `peerdock / docker run (medians): ${fmt(median(peerdock.map((run) => run.ms)) / median(dockerRun), 2)}×`,
      `worker counters: ${JSON.stringify(counters)}`,
      `load average (1/5/15 min) at start → end: ${loadBefore} → ${loadavg()}`,
    ];
    console.log(out.join('\n'));
  } finally {
    await Promise.all([worker?.stop(), client?.stop()]);
    await server?.close();
    const networks = await docker.listNetworks({ filters: { label: ['io.peerdock.bench=1'] } }).catch(() => []);
    for (const info of networks) await docker.getNetwork(info.Id).remove().catch(() => {});
    const leftovers = await docker.listContainers({ all: true, filters: { label: ['io.peerdock.worker=bench-worker'] } }).catch(() => []);
    for (const info of leftovers) await docker.getContainer(info.Id).remove({ force: true }).catch(() => {});
    const jobNetworks = await docker.listNetworks({ filters: { label: ['io.peerdock.worker=bench-worker'] } }).catch(() => []);
    for (const info of jobNetworks) await docker.getNetwork(info.Id).remove().catch(() => {});
    await rm(temp, { recursive: true, force: true });
  }
}

function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(`bench:job could not run: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
