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

export function runJobCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<JobRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'job', 'run', ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
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
