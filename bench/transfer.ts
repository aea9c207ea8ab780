/**
 * `npm run bench:transfer`: peerdock file transfer against the raw data channel and TCP, on this
 * machine, in one run. Measurements, not tests: it prints PASS/BELOW next to each target and
 * exits 0 whatever the numbers (non-zero only when the benchmark itself could not run).
 *
 * Processes: this one runs the signaling server (in-process) and drives two agents by IPC:
 *   W: the worker side (a real PeerdockWorker with the real Docker engine, raw acceptor, TCP server)
 *   C: the node client side (runJob with prepareInputs/outputsDirectory as `peerdock job run`)
 * plus Chromium (Debian's, through playwright-core) as a second client, running runJob in the page.
 *
 * Environment knobs: BENCH_SIZE_MIB (256), BENCH_BROWSER_MIB (128), BENCH_BIG_MIB (1024),
 * BENCH_RUNS (3), BENCH_SKIP_BROWSER=1, BENCH_SKIP_BIG=1.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startSignalingServer, type SignalingServer } from '../signaling/server.js';
import { buildBrowserBench } from './browser-build.js';
import { CHROMIUM_ARGS } from '../e2e/frame-browser.js';
import { cpuSeconds, fmt, log, median, mib, mibps, MiB, randomFile, RssWatch, startAgent, table, TEST_IMAGE, type Agent, type ProcessUse } from './lib.js';

const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 256) * MiB;
const BROWSER_SIZE = Number(process.env.BENCH_BROWSER_MIB ?? 128) * MiB;
const BIG = Number(process.env.BENCH_BIG_MIB ?? 1024) * MiB;
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const TCP_SIZE = 1024 * MiB;
const DIAG_SIZE = Math.max(MiB, Math.floor(SIZE / 2 / MiB) * MiB);
const RATIO_TARGET = 0.8;
const RSS_TARGET = 100 * MiB;
const CHROMIUM = process.env.PEERDOCK_CHROMIUM ?? '/usr/bin/chromium';

interface Sample {
  mibps: number;
  worker?: ProcessUse;
  client?: ProcessUse;
  /** Summed CPU of extra processes (all of Chromium). */
  extraCpu?: number;
}
interface Timed {
  bytes: number;
  ms: number;
  /** Wall-clock bounds of the measured phase (epoch ms), for the CPU figures. */
  from?: number;
  to?: number;
}

const results: Record<string, Sample[]> = {};
const problems: string[] = [];
const record = (key: string, sample: Sample) => (results[key] ??= []).push(sample);

function queue(name: string): string {
  return `bench-${name}-${crypto.randomUUID()}`;
}

/** Runs one transfer, watching RSS of the whole call and CPU of its measured phase. */
async function measure(key: string, pids: { worker?: number; client?: number; extra?: number[] }, run: () => Promise<Timed>): Promise<Timed> {
  const watched = [...new Set([pids.worker, pids.client, ...(pids.extra ?? [])].filter((pid): pid is number => pid !== undefined))];
  const watch = new RssWatch(watched);
  const value = await run();
  const use = watch.stop();
  const of = (pid: number | undefined): ProcessUse | undefined => {
    if (pid === undefined) return undefined;
    const whole = use.get(pid)!;
    return value.from && value.to ? { ...whole, cpu: watch.cpuBetween(pid, value.from, value.to) } : whole;
  };
  const sample: Sample = { mibps: mibps(value.bytes, value.ms), worker: of(pids.worker), client: of(pids.client) };
  if (pids.extra?.length) sample.extraCpu = pids.extra.reduce((sum, pid) => sum + (of(pid)?.cpu ?? 0), 0);
  record(key, sample);
  const side = (name: string, use?: ProcessUse) => (use ? `, ${name} CPU ${fmt(use.cpu, 0)}% RSS ${mib(use.start)}→${mib(use.peak)}` : '');
  log(`${key}: ${fmt(sample.mibps)} MiB/s (${mib(value.bytes)} in ${fmt(value.ms / 1000, 2)} s)${side('worker', sample.worker)}${side('client', sample.client)}`);
  return value;
}

async function main(): Promise<void> {
  const temp = await mkdtemp(join(tmpdir(), 'peerdock-bench-'));
  const docker = new Docker();
  let server: SignalingServer | undefined;
  let worker: Agent | undefined;
  let client: Agent | undefined;
  let context: BrowserContext | undefined;
  const startedAt = Date.now();
  const loadBefore = loadavg();
  try {
    await docker.ping().catch(() => {
      throw new Error('Docker is not reachable: run `bash scripts/start-dockerd.sh` (as root)');
    });
    await docker
      .getImage(TEST_IMAGE)
      .inspect()
      .catch(() => {
        throw new Error(`${TEST_IMAGE} is missing: run \`bash scripts/test-image.sh\``);
      });
    const staticDir = join(temp, 'page');
    await buildBrowserBench(staticDir);
    server = await startSignalingServer({ port: 0, host: '127.0.0.1', iceServers: [], staticDir });
    const url = server.url;
    [worker, client] = await Promise.all([startAgent('worker'), startAgent('client')]);
    log(`signaling ${url}; worker pid ${worker.pid}, client pid ${client.pid}; scratch ${temp}`);

    const W = worker.pid;
    const C = client.pid;
    const both = { worker: W, client: C };

    // --- TCP on loopback -------------------------------------------------------------------
    const port = await worker.call<number>('tcp-listen');
    for (let i = 0; i < RUNS; i++) await measure('tcp', both, () => client!.call<Timed>('tcp-send', { port, bytes: TCP_SIZE }));

    // --- node ↔ node: raw channel and peerdock, interleaved -------------------------------
    const rawQueue = queue('raw');
    await worker.call('raw-accept', { url, queue: rawQueue });
    await client.call('raw-dial', { url, queue: rawQueue });
    await worker.call('raw-wait');
    const jobQueue = queue('job');
    await worker.call('worker-start', { url, queue: jobQueue, dataDir: join(temp, 'worker-data') });
    await client.call('client-connect', { url, queue: jobQueue });
    const outputsDir = join(temp, 'client-outputs');
    const upload = async (key: string, bytes: number) => {
      const input = join(temp, `input-${key}.bin`);
      randomFile(input, bytes);
      await measure(key, both, () => client!.call<Timed>('job-upload', { path: input }));
      await rm(input);
    };
    const download = async (key: string, bytes: number) => {
      const dir = join(outputsDir, key);
      await measure(key, both, () => client!.call<Timed>('job-download', { bytes, outputsDir: dir }));
      await rm(dir, { recursive: true, force: true });
    };
    for (let i = 0; i < RUNS; i++) {
      await measure('raw-node-up', both, () => client!.call<Timed>('raw-send', { bytes: SIZE }));
      await upload('pd-node-up', SIZE);
      await measure('raw-node-down', both, () => worker!.call<Timed>('raw-send', { bytes: SIZE }));
      await download('pd-node-down', SIZE);
    }

    // --- diagnostic: Link alone (dialPeer/acceptPeers, memory source), by what the receiver does
    if (!process.env.BENCH_SKIP_DIAG) {
      const linkQueue = queue('link');
      await worker.call('link-accept', { url, queue: linkQueue });
      await client.call('link-dial', { url, queue: linkQueue });
      await worker.call('link-wait');
      for (const mode of ['discard', 'hash', 'disk'] as const) {
        await worker.call('link-mode', { mode, dir: join(temp, 'link-w') });
        await client.call('link-mode', { mode, dir: join(temp, 'link-c') });
        await measure(`link-${mode}-up`, both, () => client!.call<Timed>('link-send', { bytes: DIAG_SIZE }));
        await measure(`link-${mode}-down`, both, () => worker!.call<Timed>('link-send', { bytes: DIAG_SIZE }));
        await rm(join(temp, 'link-w'), { recursive: true, force: true });
        await rm(join(temp, 'link-c'), { recursive: true, force: true });
      }
    }

    // --- 1 GiB: memory bound (with the raw channel measured right before, same direction) --
    if (!process.env.BENCH_SKIP_BIG) {
      await measure('raw-node-up-big', both, () => client!.call<Timed>('raw-send', { bytes: SIZE }));
      await upload('pd-node-up-big', BIG);
      await measure('raw-node-down-big', both, () => worker!.call<Timed>('raw-send', { bytes: SIZE }));
      await download('pd-node-down-big', BIG);
    }

    // --- Chromium ↔ node ------------------------------------------------------------------
    if (!process.env.BENCH_SKIP_BROWSER) {
      try {
        const userDataDir = join(temp, 'chromium');
        context = await launchChromium(userDataDir);
        const page = await context.newPage();
        const pageErrors: string[] = [];
        page.on('pageerror', (error) => pageErrors.push(error.message));
        page.on('console', (message) => {
          if (message.type() === 'error') log(`page: ${message.text()}`);
        });
        await page.goto(`${url}/index.html`);
        await page.waitForFunction(() => document.title === 'bench ready');
        const browserRawQueue = queue('raw-browser');
        await worker.call('raw-accept', { url, queue: browserRawQueue });
        await call(page, 'rawDial', url, browserRawQueue);
        await worker.call('raw-wait');
        await call(page, 'connect', url, jobQueue);
        // The page's renderer: the one of our Chromium that works during a warm-up transfer.
        const tree = chromiumTree(userDataDir);
        const before = new Map(tree.map((proc) => [proc.pid, cpuSeconds(proc.pid)]));
        await call(page, 'rawSend', 16 * MiB);
        const busiest = tree
          .map((proc) => ({ ...proc, used: cpuSeconds(proc.pid) - before.get(proc.pid)! }))
          .sort((a, b) => b.used - a.used);
        const renderer = busiest.find((proc) => proc.type === 'renderer')?.pid;
        log(`chromium CPU in a 16 MiB warm-up: ${busiest.map((proc) => `${proc.type} ${proc.pid} ${fmt(proc.used, 2)}s`).join(', ')}`);
        const pair = { worker: W, client: renderer, extra: tree.map((proc) => proc.pid) };
        const browserRuns = Math.max(1, Math.min(RUNS, 2));
        for (let i = 0; i < browserRuns; i++) {
          await measure('raw-chrome-up', pair, () => call<Timed>(page, 'rawSend', BROWSER_SIZE));
          await call(page, 'prepareUpload', BROWSER_SIZE);
          await measure('pd-chrome-up', pair, () => call<Timed>(page, 'upload'));
          await measure('raw-chrome-down', pair, () => worker!.call<Timed>('raw-send', { bytes: BROWSER_SIZE }));
          await measure('pd-chrome-down', pair, () => call<Timed>(page, 'download', BROWSER_SIZE));
        }
        // Diagnostics, each alone in the page (no network): the frame's blobSource and blobSink.
        await measure('chrome-blob-read', pair, () => call<Timed>(page, 'readRate'));
        await measure('chrome-blob-sink', pair, () => call<Timed>(page, 'sinkRate', BROWSER_SIZE));
        if (pageErrors.length) problems.push(`page errors: ${pageErrors.join('; ')}`);
      } catch (error) {
        problems.push(`Chromium part failed: ${(error as Error).message.split('\n')[0]}`);
        log(`Chromium part failed: ${(error as Error).stack}`);
      }
    }

    const stats = await worker.call<Record<string, number>>('worker-stats');
    report(stats, (Date.now() - startedAt) / 1000, `${loadBefore} → ${loadavg()}`);
  } finally {
    await context?.close().catch(() => {});
    await Promise.all([worker?.stop(), client?.stop()]);
    await server?.close();
    const leftovers = await docker.listContainers({ all: true, filters: { label: ['io.peerdock.worker=bench-worker'] } }).catch(() => []);
    for (const info of leftovers) await docker.getContainer(info.Id).remove({ force: true }).catch(() => {});
    const jobNetworks = await docker.listNetworks({ filters: { label: ['io.peerdock.worker=bench-worker'] } }).catch(() => []);
    for (const info of jobNetworks) await docker.getNetwork(info.Id).remove().catch(() => {});
    await rm(temp, { recursive: true, force: true });
  }
}

async function launchChromium(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, '--allow-loopback-in-peer-connection'],
    // Without a media permission Chromium gathers no ICE candidate on a loopback-only host.
    permissions: ['microphone'],
  });
}

function call<T = unknown>(page: Page, name: string, ...args: unknown[]): Promise<T> {
  return page.evaluate(
    ([name, args]) => (globalThis as unknown as { bench: Record<string, (...a: unknown[]) => Promise<unknown>> }).bench[name as string]!(...(args as unknown[])),
    [name, args] as const,
  ) as Promise<T>;
}

/** Our own Chromium's processes: the browser process using `userDataDir` and its descendants. */
function chromiumTree(userDataDir: string): Array<{ pid: number; type: string }> {
  const ps = spawnSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  const procs = ps.stdout
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      const [pid, ppid, ...args] = line.trim().split(/\s+/);
      const joined = args.join(' ');
      const type = /--type=(\S+)/.exec(joined)?.[1] ?? 'browser';
      const sub = /--utility-sub-type=(\S+)/.exec(joined)?.[1];
      return { pid: Number(pid), ppid: Number(ppid), args: joined, type: sub ? `${type}:${sub.split('.').pop()}` : type };
    });
  const mine = new Set(procs.filter((proc) => proc.args.includes(userDataDir) && proc.type === 'browser').map((proc) => proc.pid));
  let grew = true;
  while (grew) {
    grew = false;
    for (const proc of procs) {
      if (!mine.has(proc.pid) && mine.has(proc.ppid)) {
        mine.add(proc.pid);
        grew = true;
      }
    }
  }
  return procs.filter((proc) => mine.has(proc.pid)).map(({ pid, type }) => ({ pid, type }));
}

function summary(key: string): { value: number; text: string; n: number } | undefined {
  const samples = results[key];
  if (!samples?.length) return undefined;
  const values = samples.map((sample) => sample.mibps);
  const value = median(values);
  const range = values.length > 1 ? ` [${fmt(Math.min(...values))}–${fmt(Math.max(...values))}]` : '';
  return { value, text: `${fmt(value)}${range}`, n: values.length };
}

function peakOf(key: string, side: 'worker' | 'client'): ProcessUse | undefined {
  const samples = results[key]?.map((sample) => sample[side]).filter((use): use is ProcessUse => !!use);
  if (!samples?.length) return undefined;
  return samples.reduce((a, b) => (b.growth > a.growth ? b : a));
}

function cpuOf(key: string, side: 'worker' | 'client' | 'extra'): string {
  const values = (results[key] ?? []).map((sample) => (side === 'extra' ? sample.extraCpu : sample[side]?.cpu)).filter((cpu): cpu is number => cpu !== undefined && Number.isFinite(cpu));
  return values.length ? fmt(median(values), 0) : '';
}

function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function report(stats: Record<string, number>, seconds: number, load: string): void {
  const throughput = (lines: Array<[string, number, string, string?]>, clientName: string, withExtra = false) => {
    const rows: string[][] = [];
    for (const [label, size, key, rawKey] of lines) {
      const own = summary(key);
      if (!own && key.startsWith('link-')) continue;
      const raw = rawKey ? summary(rawKey) : undefined;
      const ratio = own && raw ? own.value / raw.value : undefined;
      rows.push([
        label,
        mib(size),
        own ? `${own.text} (n=${own.n})` : 'n/a',
        rawKey ? (raw ? fmt(raw.value) : 'n/a') : '',
        ratio !== undefined ? fmt(ratio, 2) : rawKey ? 'n/a' : '',
        ratio !== undefined && !key.startsWith('link-') ? (ratio >= RATIO_TARGET ? 'PASS' : 'BELOW') : rawKey && !key.startsWith('link-') ? 'n/a' : '',
        cpuOf(key, 'worker'),
        cpuOf(key, 'client'),
        ...(withExtra ? [cpuOf(key, 'extra')] : []),
      ]);
    }
    return table(
      ['path', 'size', 'MiB/s', 'raw MiB/s', 'ratio', 'target', 'CPU% worker side', `CPU% ${clientName}`, ...(withExtra ? ['CPU% all Chromium'] : [])],
      rows,
    );
  };
  const node: Array<[string, number, string, string?]> = [
    ['TCP loopback (net, 64 KiB writes), client → worker side', TCP_SIZE, 'tcp'],
    ['raw channel node→node, dialer → acceptor', SIZE, 'raw-node-up'],
    ['raw channel node→node, acceptor → dialer', SIZE, 'raw-node-down'],
    ['peerdock upload   node client → worker', SIZE, 'pd-node-up', 'raw-node-up'],
    ['peerdock download worker → node client', SIZE, 'pd-node-down', 'raw-node-down'],
  ];
  if (!process.env.BENCH_SKIP_BIG) {
    node.push(['raw channel, dialer → acceptor (just before)', SIZE, 'raw-node-up-big']);
    node.push(['peerdock upload   node client → worker', BIG, 'pd-node-up-big', 'raw-node-up-big']);
    node.push(['raw channel, acceptor → dialer (just before)', SIZE, 'raw-node-down-big']);
    node.push(['peerdock download worker → node client', BIG, 'pd-node-down-big', 'raw-node-down-big']);
  }
  const diag: Array<[string, number, string, string?]> = [];
  for (const [mode, what] of [
    ['discard', 'receiver drops bytes (protocol only)'],
    ['hash', 'receiver sha256s'],
    ['disk', 'receiver sha256s + writes a file (fileSink)'],
  ] as const) {
    diag.push([`Link ${mode}: dialer → acceptor, ${what}`, DIAG_SIZE, `link-${mode}-up`, 'raw-node-up']);
    diag.push([`Link ${mode}: acceptor → dialer, ${what}`, DIAG_SIZE, `link-${mode}-down`, 'raw-node-down']);
  }
  const browser: Array<[string, number, string, string?]> = [
    ['raw channel Chromium → node', BROWSER_SIZE, 'raw-chrome-up'],
    ['raw channel node → Chromium', BROWSER_SIZE, 'raw-chrome-down'],
    ['peerdock upload   Chromium → worker', BROWSER_SIZE, 'pd-chrome-up', 'raw-chrome-up'],
    ['peerdock download worker → Chromium', BROWSER_SIZE, 'pd-chrome-down', 'raw-chrome-down'],
    ['diagnostic, page alone: blobSource.read, 64 KiB slices in turn', BROWSER_SIZE, 'chrome-blob-read'],
    ['diagnostic, page alone: blobSink.write (hash-wasm sha256)', BROWSER_SIZE, 'chrome-blob-sink'],
  ];

  const out: string[] = [];
  out.push('');
  out.push(`peerdock bench:transfer — ${new Date().toISOString()}, node ${process.version}, ${navigatorCores()} cores, loopback only`);
  out.push('MiB/s = median of runs [min–max]; ratio = peerdock median / raw channel median, same direction; target ≥ 0.8');
  out.push('peerdock upload: "sending-inputs" → worker says "queued" (all bytes acked and sha256-verified on disk)');
  out.push('peerdock download: output file-start → job result (written to disk, sha256-verified)');
  out.push('CPU% = CPU time of that process during the measured phase / wall time (100 = one core; the machine has 200)');
  out.push('');
  out.push('node ↔ node (real signaling server, real PeerdockWorker + Docker, runJob as `peerdock job run`)');
  out.push(throughput(node, 'client side'));
  if (!process.env.BENCH_SKIP_DIAG) {
    out.push('');
    out.push('diagnostic: Link.sendFile over dialPeer/acceptPeers, sender reads from memory (no runJob, no worker), n=1');
    out.push(throughput(diag, 'client side'));
  }
  if (!process.env.BENCH_SKIP_BROWSER) {
    out.push('');
    out.push('Chromium ↔ node (Debian Chromium via playwright-core; runJob, blobSource/blobSink in the page, as the frame)');
    out.push(throughput(browser, 'Chromium renderer', true));
  }

  const memory: string[][] = [];
  const memLine = (label: string, key: string, clientLabel: string, withTarget: boolean) => {
    const w = peakOf(key, 'worker');
    const c = peakOf(key, 'client');
    if (!w && !c) return;
    memory.push([
      label,
      w ? `${mib(w.start)} → ${mib(w.peak)}` : 'n/a',
      w ? `+${mib(w.growth)}` : 'n/a',
      withTarget && w ? (w.growth < RSS_TARGET ? 'PASS' : 'OVER') : '',
      c ? `${mib(c.start)} → ${mib(c.peak)}` : 'n/a',
      c ? `+${mib(c.growth)}` : 'n/a',
      clientLabel,
    ]);
  };
  memLine(`upload ${mib(SIZE)} node`, 'pd-node-up', 'node client', false);
  memLine(`download ${mib(SIZE)} node`, 'pd-node-down', 'node client', false);
  memLine(`upload ${mib(BIG)} node`, 'pd-node-up-big', 'node client', true);
  memLine(`download ${mib(BIG)} node`, 'pd-node-down-big', 'node client', true);
  memLine(`upload ${mib(BROWSER_SIZE)} Chromium`, 'pd-chrome-up', 'Chromium renderer', false);
  memLine(`download ${mib(BROWSER_SIZE)} Chromium`, 'pd-chrome-down', 'Chromium renderer', false);
  out.push('');
  out.push('peak RSS over the whole job (start → peak, worst run); each side is its own process; target: worker growth < 100 MiB for 1 GiB');
  out.push(table(['transfer', 'worker RSS', 'growth', 'target', 'client RSS', 'growth', 'client'], memory));
  out.push('');
  out.push(`worker counters: ${JSON.stringify(stats)}`);
  if (problems.length) out.push(`problems: ${problems.join(' | ')}`);
  out.push(`load average (1/5/15 min) at start → end: ${load}; other processes on this machine share its ${navigatorCores()} cores`);
  out.push(`total ${fmt(seconds, 0)} s`);
  console.log(out.join('\n'));
}

function navigatorCores(): number {
  return Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()) || 0;
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(`bench:transfer could not run: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
