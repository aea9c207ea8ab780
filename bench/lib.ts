/** Helpers shared by the benchmarks: agent child processes, RSS from /proc, formatting. */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const MiB = 1024 * 1024;
export const TEST_IMAGE = 'peerdock-test/busybox:latest';

export interface Agent {
  name: string;
  pid: number;
  child: ChildProcess;
  call<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  stop(): Promise<void>;
}

/** Starts bench/agent.ts in its own process (tsx), talking over IPC. */
export async function startAgent(name: string): Promise<Agent> {
  const child = fork(fileURLToPath(new URL('./agent.ts', import.meta.url)), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    for (const { reject } of pending.values()) reject(new Error(`agent ${name} exited (${code ?? signal})`));
    pending.clear();
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (message: { ready?: boolean; id?: number; ok?: boolean; value?: unknown; error?: string }) => {
      if (message.ready) return resolve();
      const waiter = pending.get(message.id!);
      if (!waiter) return;
      pending.delete(message.id!);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(new Error(`${name}: ${message.error}`));
    });
  });
  return {
    name,
    pid: child.pid!,
    child,
    call<T>(cmd: string, args: Record<string, unknown> = {}) {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, cmd, ...args });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ id: 0, cmd: 'exit' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function status(pid: number): Record<string, number> {
  const fields: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const match = /^(Vm\w+):\s+(\d+) kB/.exec(line);
    if (match) fields[match[1]!] = Number(match[2]) * 1024;
  }
  return fields;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "(comm) ": state is field 3, utime field 14, stime field 15 (1-based, see proc(5)).
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export interface ProcessUse {
  /** RSS at the start, peak during, growth (bytes). */
  start: number;
  peak: number;
  growth: number;
  /** CPU used during, as a percentage of one core. */
  cpu: number;
}

/**
 * Peak RSS and CPU of a set of processes over a stretch of time: resets the kernel's high-water
 * mark (`echo 5 > /proc/PID/clear_refs`) at the start and reads VmHWM at the end; also samples
 * VmRSS every 20 ms from outside, in case clear_refs is not available.
 */
export class RssWatch {
  private readonly baseline = new Map<number, number>();
  private readonly sampled = new Map<number, number>();
  private readonly cpuStart = new Map<number, number>();
  private readonly startedAt = performance.now();
  /** CPU seconds per pid, sampled with wall-clock times (epoch ms) to cut out a phase later. */
  private readonly cpuSamples: Array<{ at: number; cpu: Map<number, number> }> = [];
  private readonly timer: ReturnType<typeof setInterval>;
  hwmReset = true;

  constructor(private readonly pids: number[]) {
    for (const pid of pids) {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5');
      } catch {
        this.hwmReset = false;
      }
      const rss = status(pid).VmRSS ?? 0;
      this.baseline.set(pid, rss);
      this.sampled.set(pid, rss);
      this.cpuStart.set(pid, cpuSeconds(pid));
    }
    this.sample();
    this.timer = setInterval(() => this.sample(), 20);
  }

  private sample(): void {
    const cpu = new Map<number, number>();
    this.cpuSamples.push({ at: epochMs(), cpu });
    for (const pid of this.pids) {
      try {
        cpu.set(pid, cpuSeconds(pid));
      } catch {
        // process gone
      }
      try {
        const rss = status(pid).VmRSS ?? 0;
        if (rss > (this.sampled.get(pid) ?? 0)) this.sampled.set(pid, rss);
      } catch {
        // process gone
      }
    }
  }

  /** CPU (% of one core) of `pid` between two wall-clock instants (epoch ms), from the samples. */
  cpuBetween(pid: number, from: number, to: number): number {
    const first = [...this.cpuSamples].reverse().find((sample) => sample.at <= from) ?? this.cpuSamples[0];
    const last = this.cpuSamples.find((sample) => sample.at >= to) ?? this.cpuSamples.at(-1);
    if (!first || !last || last.at <= first.at) return NaN;
    const used = (last.cpu.get(pid) ?? NaN) - (first.cpu.get(pid) ?? NaN);
    return (used / ((last.at - first.at) / 1000)) * 100;
  }

  stop(): Map<number, ProcessUse> {
    clearInterval(this.timer);
    this.sample();
    const seconds = (performance.now() - this.startedAt) / 1000;
    const result = new Map<number, ProcessUse>();
    for (const pid of this.pids) {
      let hwm = 0;
      let cpu = NaN;
      try {
        hwm = this.hwmReset ? (status(pid).VmHWM ?? 0) : 0;
        cpu = ((cpuSeconds(pid) - this.cpuStart.get(pid)!) / seconds) * 100;
      } catch {
        // gone
      }
      const start = this.baseline.get(pid)!;
      const peak = Math.max(hwm, this.sampled.get(pid)!);
      result.set(pid, { start, peak, growth: peak - start, cpu });
    }
    return result;
  }
}

/** Makes a file of random bytes (outside the measured processes). */
export function randomFile(path: string, bytes: number): void {
  const result = spawnSync('sh', ['-c', `head -c ${bytes} /dev/urandom > '${path}'`]);
  if (result.status !== 0) throw new Error(`could not write ${path}: ${result.stderr}`);
}

/** Wall-clock milliseconds comparable across processes (and with a page's timeOrigin + now()). */
export const epochMs = () => performance.timeOrigin + performance.now();

export const mibps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);
export const fmt = (value: number | undefined, digits = 1) => (value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits));
export const mib = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${(bytes / MiB).toFixed(0)} MiB`);

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Prints rows as an aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}
