/**
 * Real processes for integration tests: `peerdock signal`, `peerdock worker run` and
 * `peerdock job run`, each started from bin/peerdock.js exactly as a user would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { buildJobDefinition, computeJobId, type JobSpec } from '../protocol/job.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'peerdock.js');
/** Built offline from Debian's busybox-static by scripts/test-image.sh (no registry is reachable). */
export const TEST_IMAGE = 'peerdock-test/busybox:latest';

export const docker = new Docker();

export interface Running {
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

function launch(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitForOutput(running: Running, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = running.output().match(pattern);
    if (match) return match;
    if (running.process.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await running.stop();
  throw new Error(`${what} did not start:\n${running.output()}`);
}

export async function startSignal(): Promise<Running & { url: string }> {
  const running = launch(['signal', '--port', '0', '--host', '127.0.0.1']);
  const match = await waitForOutput(running, /listening on (http:\/\/\S+)/, 'signaling server');
  return { ...running, url: match[1]! };
}

export async function startWorker(
  signalUrl: string,
  queue: string,
  options: { cores?: number; dataDir?: string; id?: string; extra?: string[] } = {},
): Promise<Running & { dataDir: string; id: string }> {
  const dataDir = options.dataDir ?? (await tempDir('worker'));
  const id = options.id ?? `test-worker-${Math.random().toString(36).slice(2, 8)}`;
  const running = launch([
    'worker',
    'run',
    `--cores=${options.cores ?? 2}`,
    '--signal',
    signalUrl,
    '--data-dir',
    dataDir,
    '--id',
    id,
    ...(options.extra ?? []),
    queue,
  ]);
  await waitForOutput(running, /ready:/, 'worker');
  return { ...running, dataDir, id };
}

export interface JobRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last stdout line parsed, when --json was given. */
  json: Record<string, unknown> | undefined;
}

/** `peerdock job run …` to its end. */
export function runJobCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<JobRun> {
  return runCli(['job', 'run', ...args], options);
}

const temporaryDirs: string[] = [];

export async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `peerdock-${name}-`));
  temporaryDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(temporaryDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

export function randomQueue(): string {
  return `test-queue-${crypto.randomUUID()}`;
}

/** Containers Docker created for a job since `since` (seconds), read from the engine's event log. */
export async function containersCreatedFor(jobId: string, since: number): Promise<number> {
  const until = Math.ceil(Date.now() / 1000) + 1;
  const stream = (await docker.getEvents({
    since,
    until,
    filters: { type: ['container'], event: ['create'], label: [`io.peerdock.job=${jobId}`] },
  })) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text.split('\n').filter((line) => line.trim()).length;
}

// ---- Helpers for the fault tests (e2e/faults-*.test.ts) ----

/** A signaling server on a given port, e.g. the port of one just killed (a restart). */
export async function startSignalOnPort(port: number): Promise<Running & { url: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const running = launch(['signal', '--port', String(port), '--host', '127.0.0.1']);
    try {
      const match = await waitForOutput(running, /listening on (http:\/\/\S+)/, 'signaling server', 10_000);
      return { ...running, url: match[1]! };
    } catch (error) {
      // The port may be in TIME_WAIT/held for a moment after a kill: try again briefly.
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Waits until a running process has printed `pattern` (it keeps running). */
export async function waitForText(running: { output: () => string; process: ChildProcess }, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = running.output().match(pattern);
    if (match) return match;
    if (running.process.exitCode !== null || running.process.signalCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what}: /${pattern.source}/ not seen within ${timeoutMs} ms; output so far:\n${running.output()}`);
}

/** `kill -9`: no handler runs, no goodbye is said. Resolves once the process is gone. */
export async function kill9(running: { process: ChildProcess }): Promise<void> {
  const child = running.process;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

export interface BackgroundCli {
  process: ChildProcess;
  /** stdout and stderr together, as they came. */
  output: () => string;
  stdout: () => string;
  /** Resolves when the process exits (also after a kill). */
  done: Promise<JobRun>;
}

/**
 * Any `peerdock …` command started without waiting for it (e.g. `job run` to be killed mid-job,
 * `job attach`, `job cancel`); `done` gives what `runJobCli` gives.
 */
export function spawnCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): BackgroundCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let both = '';
  child.stdout!.on('data', (chunk) => ((stdout += chunk), (both += chunk)));
  child.stderr!.on('data', (chunk) => ((stderr += chunk), (both += chunk)));
  const done = new Promise<JobRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      const last = stdout.trimEnd().split('\n').at(-1) ?? '';
      let json: Record<string, unknown> | undefined;
      try {
        json = args.includes('--json') ? JSON.parse(last) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
  return { process: child, output: () => both, stdout: () => stdout, done };
}

/** Runs any `peerdock …` command to its end. */
export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<JobRun> {
  return spawnCli(args, options).done;
}

export interface ContainerEvent {
  action: string;
  jobId: string;
  workerId: string;
  containerId: string;
  /** Nanoseconds since the epoch, as the engine stamps it (a double: ~256 ns precision, plenty here). */
  timeNano: number;
}

/** Container events (create, start, die…) since `since` (seconds) for containers carrying `label` (k=v). */
export async function containerEvents(label: string, since: number, actions = ['create', 'start', 'die']): Promise<ContainerEvent[]> {
  const until = Math.ceil(Date.now() / 1000) + 1;
  const stream = (await docker.getEvents({
    since,
    until,
    filters: { type: ['container'], event: actions, label: [label] },
  })) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as { Action: string; id: string; timeNano: number | string; Actor: { Attributes: Record<string, string> } })
    .map((event) => ({
      action: event.Action,
      containerId: event.id,
      jobId: event.Actor.Attributes['io.peerdock.job'] ?? '',
      workerId: event.Actor.Attributes['io.peerdock.worker'] ?? '',
      timeNano: Number(event.timeNano),
    }));
}

/** The most containers running at once, from a start/die timeline. */
export function maxConcurrency(events: ContainerEvent[]): number {
  const ordered = [...events].filter((event) => event.action === 'start' || event.action === 'die').sort((a, b) => a.timeNano - b.timeNano || (a.action === 'die' ? -1 : 1));
  let running = 0;
  let max = 0;
  for (const event of ordered) {
    running += event.action === 'start' ? 1 : -1;
    max = Math.max(max, running);
  }
  return max;
}

/** The port of a server URL such as http://127.0.0.1:41234. */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}

export interface ContainerWatch {
  /** Events seen so far, in the order the engine sent them. */
  events: ContainerEvent[];
  /** Containers created for a job (or all, without one) since the watch started. */
  created: (jobId?: string) => number;
  /** Waits a moment for trailing events, then stops watching; returns the events. */
  stop: () => Promise<ContainerEvent[]>;
}

/**
 * Watches peerdock's container events live from now on. Unlike `containersCreatedFor`, which
 * reads the engine's history (dockerd keeps only its last 256 events, and a busy engine shared
 * with other test suites drops older ones), nothing is missed however long the test runs.
 */
export async function watchContainers(actions = ['create', 'start', 'die']): Promise<ContainerWatch> {
  const stream = (await docker.getEvents({
    filters: { type: ['container'], event: actions, label: ['io.peerdock.managed=true'] },
  })) as NodeJS.ReadableStream & { destroy?: () => void; socket?: { unref?: () => void } };
  // A watch left open (a test that threw before stopping it) must not keep the process alive.
  stream.socket?.unref?.();
  const events: ContainerEvent[] = [];
  let pending = '';
  stream.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      const event = JSON.parse(line) as { Action: string; id: string; timeNano: number; Actor: { Attributes: Record<string, string> } };
      events.push({
        action: event.Action,
        containerId: event.id,
        jobId: event.Actor.Attributes['io.peerdock.job'] ?? '',
        workerId: event.Actor.Attributes['io.peerdock.worker'] ?? '',
        timeNano: Number(event.timeNano),
      });
    }
  });
  stream.on('error', () => {});
  return {
    events,
    created: (jobId) => events.filter((event) => event.action === 'create' && (jobId === undefined || event.jobId === jobId)).length,
    stop: async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      stream.destroy?.();
      return events;
    },
  };
}

/**
 * A job with a nonce in its env, so no earlier run's stored result can answer it: its id, its
 * definition (for runJob) and the matching `job run` flags.
 */
export async function uniqueJob(command: string, extra: Partial<JobSpec> = {}) {
  const nonce = crypto.randomUUID();
  const spec: JobSpec = { image: TEST_IMAGE, command, env: { NONCE: nonce }, ...extra };
  const definition = buildJobDefinition(spec, {});
  const jobId = await computeJobId(definition);
  const flags = ['--image', TEST_IMAGE, '--command', command, '--env', `NONCE=${nonce}`];
  if (extra.maxDuration !== undefined) flags.push('--max-duration', String(extra.maxDuration));
  return { jobId, definition, flags };
}
