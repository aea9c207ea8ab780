import { AnsiUp } from 'ansi_up';
import { html, LitElement, nothing, type PropertyValues, type TemplateResult } from 'lit';
import { unsafeHTML } from 'lit/directives/unsafe-html.js';
import { blobRef, blobSink, blobSource, guessType, looksLikeText, textBlob } from '../client/browser-files.js';
import { formatBytes } from '../protocol/format.js';
import { findCachedOutput, loadCachedJob, saveCachedJob, trimLogs, type CachedJob } from '../client/browser-cache.js';
import { runJob, type JobEvent } from '../client/run-job.js';
import { describeConnection, type ConnectionKind, type ConnectionReport } from '../peer/connection-report.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { PeerdockError, toPeerdockError } from '../protocol/errors.js';
import { formatFrameHash, parseFrameHash, type FrameHashParams, type HashJob } from '../protocol/hash-params.js';
import { buildJobDefinition, computeJobId, relativePathProblem, type FileRef, type JobDefinition, type JobSpec } from '../protocol/job.js';
import { describeState, isFinalState, type JobState } from '../protocol/job-state.js';
import type { ByteSource } from '../protocol/link.js';
import type { JobResult } from '../protocol/messages.js';
import { generateQueue, MIN_QUEUE_LENGTH } from '../protocol/queue-keys.js';
import type { PresenceWorker } from '../protocol/signaling-events.js';
import { styles } from './styles.js';

/** Short labels for the worker list; the title has the full description. */
const CONNECTION_LABELS: Record<ConnectionKind, string> = { direct: 'direct', stun: 'via STUN', relay: 'relayed (TURN)' };

/** An input file of the job: text typed in the editor, or a Blob (a picked file, a metapage input). */
export interface InputFile {
  id: number;
  name: string;
  text?: string;
  blob?: Blob;
  /** Set by the metapage: not editable here, replaced on every input change. */
  fromMetapage?: boolean;
}

export interface OutputView {
  path: string;
  size: number;
  sha256: string;
  received: number;
  blob?: Blob;
  /** True when the bytes came from this browser's cache (same content), not over the network. */
  reused?: boolean;
  url?: string;
  preview?: { kind: 'text'; text: string; truncated: boolean } | { kind: 'image' } | { kind: 'none' };
  open?: boolean;
}

type Connection = 'off' | 'connecting' | 'connected' | 'reconnecting' | 'failed';
type RunPhase = JobState | 'idle' | 'preparing';

interface LogChunk {
  stream: 'stdout' | 'stderr';
  html: string;
}

const MAX_LOG_CHUNKS = 20_000;
const PREVIEW_BYTES = 64 * 1024;

let nextInputId = 1;

/**
 * `<peerdock-job>`: configure a Docker job, run it on a worker of the queue over WebRTC, watch its
 * logs and collect its outputs. Attributes: `queue`, `signal` (signaling server URL; default this
 * page's origin), `sync-hash` (read and write the job in the URL hash, as container.mtfm.io does).
 */
export class PeerdockJob extends LitElement {
  static override styles = styles;
  static override properties = {
    queue: { type: String, reflect: true },
    signal: { type: String },
    syncHash: { type: Boolean, attribute: 'sync-hash' },
    autostart: { type: Boolean },
    image: { state: true },
    command: { state: true },
    entrypoint: { state: true },
    workdir: { state: true },
    maxDuration: { state: true },
    env: { state: true },
    inputs: { state: true },
    connection: { state: true },
    connectionError: { state: true },
    workers: { state: true },
    links: { state: true },
    phase: { state: true },
    statusDetail: { state: true },
    progress: { state: true },
    logs: { state: true },
    outputs: { state: true },
    result: { state: true },
    fromCache: { state: true },
    jobId: { state: true },
    errors: { state: true },
    notices: { state: true },
    follow: { state: true },
    now: { state: true },
  };

  queue = '';
  signal = '';
  syncHash = false;
  autostart = false;

  image = '';
  command = '';
  entrypoint = '';
  workdir = '';
  maxDuration = '';
  env: Array<{ key: string; value: string }> = [];
  inputs: InputFile[] = [];

  connection: Connection = 'off';
  connectionError = '';
  workers: PresenceWorker[] = [];
  /** How this page last reached each worker (direct, via STUN, relayed), by worker id. */
  links = new Map<string, ConnectionReport>();

  phase: RunPhase = 'idle';
  statusDetail = '';
  /** 0..1, or -1 for an indeterminate bar, or undefined for none. */
  progress: number | undefined;
  logs: LogChunk[] = [];
  outputs: OutputView[] = [];
  result: (JobResult & { cached?: boolean }) | undefined;
  fromCache = false;
  jobId = '';
  errors: string[] = [];
  notices: string[] = [];
  follow = true;
  now = Date.now();

  private signaling: SignalingClient | undefined;
  private signalingFor = '';
  private signalingStops: Array<() => void> = [];
  private abort: AbortController | undefined;
  private phaseSince = 0;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private ansi = { stdout: ansiUp(), stderr: ansiUp() };
  private plainLog: string[] = [];
  private logChars = 0;
  private pendingLogs: LogChunk[] = [];
  private logFlush = 0;
  private lookupTimer: ReturnType<typeof setTimeout> | undefined;
  private lookupSeq = 0;
  private hashListener = () => this.readHash();
  private autostartPending = false;
  private runSeq = 0;

  // ---------------------------------------------------------------- lifecycle

  override connectedCallback(): void {
    super.connectedCallback();
    if (this.syncHash) {
      this.readHash();
      window.addEventListener('hashchange', this.hashListener);
    }
    if (!this.image && this.inputs.length === 0) this.image = 'alpine:3.20';
    this.ticker = setInterval(() => {
      if (this.phase !== 'idle' && !isFinalState(this.phase as JobState)) this.now = Date.now();
    }, 500);
    this.scheduleLookup();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener('hashchange', this.hashListener);
    clearInterval(this.ticker);
    this.closeSignaling();
    this.abort?.abort();
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('queue') || changed.has('signal')) this.ensureSignaling();
  }

  protected override updated(changed: PropertyValues<this>): void {
    if (changed.has('logs') && this.follow) {
      const log = this.renderRoot.querySelector('pre.log');
      if (log) log.scrollTop = log.scrollHeight;
    }
    const editorKeys = ['image', 'command', 'entrypoint', 'workdir', 'maxDuration', 'env', 'inputs', 'queue'] as const;
    if (editorKeys.some((key) => changed.has(key))) {
      this.writeHash();
      this.scheduleLookup();
    }
  }

  // ---------------------------------------------------------------- public API

  /** The job as the editor holds it, in the shape of the `job` hash parameter. */
  get jobSpec(): HashJob {
    const env = Object.fromEntries(this.env.filter((row) => row.key.trim()).map((row) => [row.key.trim(), row.value]));
    const spec: HashJob = { image: this.image.trim() };
    if (this.command.trim()) spec.command = this.command;
    if (this.entrypoint.trim()) spec.entrypoint = this.entrypoint;
    if (this.workdir.trim()) spec.workdir = this.workdir.trim();
    if (Object.keys(env).length > 0) spec.env = env;
    if (this.maxDuration.trim()) spec.maxDuration = this.maxDuration.trim();
    return spec;
  }

  /** Fills the editor from a job (hash parameter shape); unknown keys are ignored. */
  setJob(job: HashJob): void {
    const line = (value: string | string[] | undefined) => (Array.isArray(value) ? value.map(quoteWord).join(' ') : (value ?? ''));
    this.image = job.image ?? '';
    this.command = line(job.command);
    this.entrypoint = line(job.entrypoint);
    this.workdir = job.workdir ?? '';
    this.maxDuration = job.maxDuration === undefined ? '' : String(job.maxDuration);
    this.env = Object.entries(job.env ?? {}).map(([key, value]) => ({ key, value: String(value) }));
  }

  /** Replaces the text inputs typed in the editor. */
  setTextInputs(inputs: Record<string, string>): void {
    this.inputs = [
      ...this.inputs.filter((input) => input.fromMetapage),
      ...Object.entries(inputs).map(([name, text]) => ({ id: nextInputId++, name, text })),
    ];
  }

  /** Replaces the inputs that come from a metapage (or any host): each value is a file. */
  setExternalInputs(files: Record<string, Blob>): void {
    this.inputs = [
      ...this.inputs.filter((input) => !input.fromMetapage && !(input.name in files)),
      ...Object.entries(files).map(([name, blob]) => ({ id: nextInputId++, name, blob, fromMetapage: true })),
    ];
  }

  get running(): boolean {
    return this.abort !== undefined;
  }

  // ---------------------------------------------------------------- hash

  private readHash(): void {
    const parsed = parseFrameHash(window.location.hash);
    this.errors = parsed.errors;
    this.notices = parsed.notices;
    if (parsed.queue !== undefined && parsed.queue !== this.queue) this.queue = parsed.queue;
    if (parsed.job) this.setJob(parsed.job);
    if (parsed.inputs) this.setTextInputs(parsed.inputs);
    if (parsed.autostart) {
      this.autostart = true;
      this.autostartPending = true;
    }
  }

  private writeHash(): void {
    if (!this.syncHash) return;
    const params: FrameHashParams = {
      queue: this.queue || undefined,
      job: this.jobSpec,
      inputs: Object.fromEntries(this.inputs.filter((input) => input.text !== undefined && !input.fromMetapage).map((input) => [input.name, input.text!])),
      autostart: this.autostart,
    };
    const next = formatFrameHash(window.location.hash, params);
    const current = window.location.hash.replace(/^#/, '');
    if (next !== current) history.replaceState(history.state, '', `${location.pathname}${location.search}#${next}`);
  }

  // ---------------------------------------------------------------- signaling

  private signalUrl(): string {
    return this.signal || window.location.origin;
  }

  private ensureSignaling(): void {
    const queue = this.queue.trim();
    const key = queue.length >= MIN_QUEUE_LENGTH ? `${this.signalUrl()}|${queue}` : '';
    if (key === this.signalingFor) return;
    this.closeSignaling();
    this.signalingFor = key;
    if (!key) {
      this.connection = 'off';
      this.connectionError = queue ? `The queue must be at least ${MIN_QUEUE_LENGTH} characters.` : '';
      return;
    }
    if (!globalThis.crypto?.subtle) {
      // Browsers give WebCrypto (which derives the room and seals signals) only to secure pages.
      this.connection = 'failed';
      this.connectionError = `This page needs https (or http on localhost): browsers give WebCrypto only to secure pages, and peerdock seals its signals with it. Serve the frame over https.`;
      return;
    }
    this.connection = 'connecting';
    this.connectionError = '';
    // Debounced: typing a queue must not open a connection per key.
    const timer = setTimeout(() => {
      SignalingClient.connect({ url: this.signalUrl(), queue, role: 'client' }).then(
        (client) => {
          if (this.signalingFor !== key) return client.close();
          this.signaling = client;
          this.connection = 'connected';
          this.workers = client.workers;
          this.signalingStops.push(
            client.onPresence((workers) => (this.workers = workers)),
            client.onConnectionChange((connected) => (this.connection = connected ? 'connected' : 'reconnecting')),
          );
          this.maybeAutostart();
        },
        (error: unknown) => {
          if (this.signalingFor !== key) return;
          this.connection = 'failed';
          this.connectionError = toPeerdockError(error).message;
        },
      );
    }, 250);
    this.signalingStops.push(() => clearTimeout(timer));
  }

  private closeSignaling(): void {
    this.signalingStops.splice(0).forEach((stop) => stop());
    this.signaling?.close();
    this.signaling = undefined;
    this.workers = [];
  }

  private waitForSignaling(signal: AbortSignal): Promise<SignalingClient> {
    if (this.signaling) return Promise.resolve(this.signaling);
    if (this.connection === 'off') {
      return Promise.reject(new PeerdockError('ERR_INVALID_FLAG', 'enter a queue first (at least 8 characters), or generate one'));
    }
    return new Promise((resolve, reject) => {
      const poll = setInterval(() => {
        if (this.signaling) done(undefined, this.signaling);
        else if (this.connection === 'failed') done(new PeerdockError('ERR_SIGNALING', this.connectionError));
        else if (signal.aborted) done(new PeerdockError('ERR_CANCELLED', 'cancelled'));
      }, 50);
      const done = (error?: PeerdockError, client?: SignalingClient) => {
        clearInterval(poll);
        if (client) resolve(client);
        else reject(error);
      };
    });
  }

  // ---------------------------------------------------------------- cache

  private scheduleLookup(): void {
    clearTimeout(this.lookupTimer);
    this.lookupTimer = setTimeout(() => void this.lookupCache(), 150);
  }

  /** Shows a finished job of the same id from the browser cache, when not running. */
  private async lookupCache(): Promise<void> {
    if (this.running) return;
    const seq = ++this.lookupSeq;
    let jobId = '';
    try {
      jobId = (await this.prepare()).jobId;
    } catch {
      jobId = '';
    }
    if (seq !== this.lookupSeq || this.running) return;
    if (jobId === this.jobId && this.phase !== 'idle') return this.maybeAutostart();
    const cached = jobId ? await loadCachedJob(jobId) : undefined;
    if (seq !== this.lookupSeq || this.running) return;
    this.jobId = jobId;
    if (cached) this.showCached(cached);
    else if (this.fromCache || isFinalState(this.phase as JobState)) this.resetRun();
    this.maybeAutostart();
  }

  private showCached(cached: CachedJob): void {
    this.resetRun();
    this.fromCache = true;
    for (const log of cached.logs) this.appendLog(log.stream, log.data);
    this.flushLogs();
    this.result = cached.result;
    this.outputs = cached.outputs.map((output) => ({ ...output, received: output.size }));
    this.setPhase(cached.result.state);
    this.statusDetail = this.finalDetail(cached.result, true);
    void Promise.all(this.outputs.map((output) => this.describeOutput(output)));
  }

  // ---------------------------------------------------------------- running

  /** Set while a host (the metaframe) has not delivered its first inputs: autostart waits. */
  holdAutostart = false;

  private maybeAutostart(): void {
    if (!this.autostartPending || this.holdAutostart || this.running || !this.signaling) return;
    this.autostartPending = false;
    if (this.fromCache) return; // already done: the cached result is shown
    void this.run();
  }

  /** Called by the metaframe when its inputs change and autostart is on. */
  requestAutostart(): void {
    this.autostartPending = true;
    this.scheduleLookup();
  }

  private async prepare(): Promise<{ definition: JobDefinition; jobId: string; sources: Map<string, ByteSource> }> {
    const refs: Record<string, FileRef> = {};
    const sources = new Map<string, ByteSource>();
    for (const input of this.inputs) {
      const name = input.name.trim();
      const problem = relativePathProblem(name);
      if (!name || problem) throw new PeerdockError('ERR_INPUT_NAME', `input file name ${problem ?? 'is empty'}`);
      if (refs[name]) throw new PeerdockError('ERR_INPUT_NAME', `two input files are named "${name}"`);
      const blob = input.blob ?? textBlob(input.text ?? '');
      const ref = await blobRef(blob);
      refs[name] = ref;
      sources.set(ref.sha256, blobSource(blob));
    }
    const definition = buildJobDefinition(this.jobSpec as JobSpec, refs);
    return { definition, jobId: await computeJobId(definition), sources };
  }

  async run(): Promise<RunJobOutcome> {
    if (this.running) throw new PeerdockError('ERR_INTERNAL', 'a job is already running');
    const seq = ++this.runSeq;
    const abort = new AbortController();
    this.abort = abort;
    this.resetRun();
    this.setPhase('preparing');
    const outputs = new Map<string, OutputView>();
    const rawLogs: Array<{ stream: 'stdout' | 'stderr'; data: string }> = [];
    try {
      const { definition, jobId, sources } = await this.prepare();
      this.jobId = jobId;
      this.setPhase('dispatching');
      const signaling = await this.waitForSignaling(abort.signal);
      const sinks = new Map<string, ReturnType<typeof blobSink>>();
      const result = await runJob({
        signaling,
        peer: {},
        jobId,
        definition,
        inputs: sources,
        signal: abort.signal,
        // An output this browser already holds (same sha256, from an earlier job) is not sent again.
        wantOutput: async (file) => {
          const blob = await findCachedOutput(file.sha256);
          if (!blob || blob.size !== file.size) return true;
          const view: OutputView = { ...file, received: file.size, blob: new Blob([blob], { type: guessType(file.path) }), reused: true };
          await this.describeOutput(view);
          outputs.set(file.path, view);
          this.outputs = [...outputs.values()];
          return false;
        },
        openOutput: (file) => {
          const sink = blobSink({ expectSha256: file.sha256, type: guessType(file.path) });
          sinks.set(file.path, sink);
          const view: OutputView = { ...file, received: 0 };
          outputs.set(file.path, view);
          this.outputs = [...outputs.values()];
          return {
            write: (chunk) => sink.write(chunk),
            finish: async () => {
              const digest = await sink.finish();
              view.blob = sink.blob();
              view.received = file.size;
              await this.describeOutput(view);
              this.outputs = [...outputs.values()];
              return digest;
            },
            abort: (error) => sink.abort(error),
          };
        },
        onEvent: (event) => {
          if (seq !== this.runSeq) return;
          if (event.type === 'log') rawLogs.push({ stream: event.stream, data: event.data });
          this.onJobEvent(event, outputs);
        },
      });
      this.flushLogs();
      this.result = result;
      this.outputs = result.outputs.map((file) => outputs.get(file.path) ?? { ...file, received: 0 });
      this.setPhase(result.state);
      this.statusDetail = this.finalDetail(result, false);
      const complete = this.outputs.every((output) => output.blob);
      if (complete && result.state !== 'cancelled') {
        const trimmed = trimLogs(rawLogs);
        await saveCachedJob({
          jobId,
          result: stripCached(result),
          logs: trimmed.logs,
          logsTruncated: trimmed.truncated,
          outputs: this.outputs.map((output) => ({ path: output.path, size: output.size, sha256: output.sha256, blob: output.blob! })),
          workerId: result.workerId,
          savedAt: Date.now(),
        });
      }
      const outcome: RunJobOutcome = { jobId, result, outputs: this.outputs };
      this.dispatchEvent(new CustomEvent('peerdock-result', { detail: outcome, bubbles: true, composed: true }));
      return outcome;
    } catch (error) {
      const problem = toPeerdockError(error);
      this.flushLogs();
      if (problem.code === 'ERR_CANCELLED' || abort.signal.aborted) {
        this.setPhase('cancelled');
        this.statusDetail = '';
      } else {
        this.setPhase('failed');
        this.statusDetail = problem.message;
      }
      throw problem;
    } finally {
      this.progress = undefined;
      if (this.abort === abort) this.abort = undefined;
      this.requestUpdate();
      // Inputs that changed while this run was going (autostart) run next.
      if (this.autostartPending) this.scheduleLookup();
    }
  }

  cancel(): void {
    if (!this.abort) return;
    this.statusDetail = 'cancelling…';
    this.abort.abort();
  }

  private onJobEvent(event: JobEvent, outputs: Map<string, OutputView>): void {
    switch (event.type) {
      case 'state':
        if (this.phase !== event.state) this.setPhase(event.state);
        this.progress = event.state === 'dispatching' || event.state === 'queued' ? -1 : undefined;
        this.statusDetail = event.state === 'queued' && event.position ? `position ${event.position}` : '';
        return;
      case 'worker':
        this.statusDetail = `on ${event.workerId}`;
        return;
      case 'connected':
        if (event.connection) {
          this.links = new Map(this.links).set(event.workerId, event.connection);
          this.statusDetail = `on ${event.workerId}, ${describeConnection(event.connection)}`;
        }
        return;
      case 'retry':
        this.statusDetail = `lost ${event.workerId} (${event.reason}); dispatching again, attempt ${event.attempt + 1}`;
        return;
      case 'upload':
        this.progress = event.total > 0 ? event.done / event.total : 1;
        this.statusDetail = `${formatBytes(event.done)} of ${formatBytes(event.total)}`;
        return;
      case 'pull':
        if (this.phase !== 'pulling') this.setPhase('pulling');
        this.progress = event.total > 0 ? event.current / event.total : -1;
        this.statusDetail = event.total > 0 ? `${event.status} ${formatBytes(event.current)} of ${formatBytes(event.total)}` : event.status;
        return;
      case 'log':
        this.appendLog(event.stream, event.data);
        return;
      case 'download': {
        const view = outputs.get(event.path);
        if (view) {
          view.received = event.done;
          this.requestUpdate('outputs');
        }
        return;
      }
    }
  }

  private setPhase(phase: RunPhase): void {
    this.phase = phase;
    this.phaseSince = Date.now();
    this.now = Date.now();
  }

  private resetRun(): void {
    for (const output of this.outputs) if (output.url) URL.revokeObjectURL(output.url);
    this.outputs = [];
    this.logs = [];
    this.plainLog = [];
    this.logChars = 0;
    this.pendingLogs = [];
    this.ansi = { stdout: ansiUp(), stderr: ansiUp() };
    this.result = undefined;
    this.fromCache = false;
    this.phase = 'idle';
    this.statusDetail = '';
    this.progress = undefined;
    this.follow = true;
  }

  private finalDetail(result: JobResult & { durationMs?: number }, fromCache: boolean): string {
    const parts: string[] = [];
    if (result.exitCode !== null && result.exitCode !== undefined) parts.push(`exit code ${result.exitCode}`);
    if (result.durationMs !== undefined) parts.push(formatDuration(result.durationMs));
    if (result.error && result.state !== 'finished') parts.push(result.error.message);
    if (fromCache) parts.push('from this browser’s cache');
    else if ((result as { cached?: boolean }).cached) parts.push('result stored on the worker');
    return parts.join(' · ');
  }

  // ---------------------------------------------------------------- logs

  private appendLog(stream: 'stdout' | 'stderr', data: string): void {
    this.plainLog.push(data);
    this.logChars += data.length;
    this.pendingLogs.push({ stream, html: this.ansi[stream].ansi_to_html(data) });
    // Batched per animation frame: a chatty job must not re-render per line.
    if (!this.logFlush) this.logFlush = requestAnimationFrame(() => this.flushLogs());
  }

  private flushLogs(): void {
    if (this.logFlush) cancelAnimationFrame(this.logFlush);
    this.logFlush = 0;
    if (this.pendingLogs.length === 0) return;
    let logs = [...this.logs, ...this.pendingLogs];
    if (logs.length > MAX_LOG_CHUNKS) logs = logs.slice(logs.length - MAX_LOG_CHUNKS);
    this.pendingLogs = [];
    this.logs = logs;
  }

  private onLogScroll(event: Event): void {
    const log = event.currentTarget as HTMLElement;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
    if (atBottom !== this.follow) this.follow = atBottom;
  }

  private jumpToEnd(): void {
    this.follow = true;
    const log = this.renderRoot.querySelector('pre.log');
    if (log) log.scrollTop = log.scrollHeight;
  }

  private async copyLogs(event: Event): Promise<void> {
    const button = event.currentTarget as HTMLButtonElement;
    const text = this.plainLog.join('').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Copy failed';
    }
    setTimeout(() => (button.textContent = 'Copy'), 1500);
  }

  // ---------------------------------------------------------------- outputs

  private async describeOutput(view: OutputView): Promise<void> {
    if (!view.blob) return;
    view.url ??= URL.createObjectURL(view.blob);
    const type = guessType(view.path);
    if (type.startsWith('image/')) view.preview = { kind: 'image' };
    else if (await looksLikeText(view.blob)) {
      const text = await view.blob.slice(0, PREVIEW_BYTES).text();
      view.preview = { kind: 'text', text, truncated: view.blob.size > PREVIEW_BYTES };
    } else view.preview = { kind: 'none' };
    this.requestUpdate('outputs');
  }

  private downloadAll(): void {
    const anchors = this.renderRoot.querySelectorAll<HTMLAnchorElement>('a.download');
    anchors.forEach((anchor, index) => setTimeout(() => anchor.click(), index * 250));
  }

  // ---------------------------------------------------------------- editor handlers

  private newQueue(): void {
    this.queue = generateQueue();
  }

  private addEnv(): void {
    this.env = [...this.env, { key: '', value: '' }];
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLInputElement>('.env-row:last-of-type .env-key')?.focus());
  }

  private addInput(): void {
    const taken = new Set(this.inputs.map((input) => input.name));
    let name = 'input.txt';
    for (let i = 2; taken.has(name); i++) name = `input-${i}.txt`;
    this.inputs = [...this.inputs, { id: nextInputId++, name, text: '' }];
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLInputElement>('.file:last-of-type input.name')?.focus());
  }

  private async pickFiles(event: Event): Promise<void> {
    const picker = event.currentTarget as HTMLInputElement;
    const files = [...(picker.files ?? [])];
    picker.value = '';
    const added = files.map((file) => ({ id: nextInputId++, name: file.name, blob: file as Blob }));
    this.inputs = [...this.inputs.filter((input) => !added.some((file) => file.name === input.name)), ...added];
  }

  private updateInput(id: number, patch: Partial<InputFile>): void {
    this.inputs = this.inputs.map((input) => (input.id === id ? { ...input, ...patch } : input));
  }

  private onKeydown(event: KeyboardEvent): void {
    if ((event.ctrlKey || event.metaKey) && event.key === 'Enter') {
      event.preventDefault();
      if (!this.running) void this.run().catch(() => {});
    }
  }

  // ---------------------------------------------------------------- render

  override render(): TemplateResult {
    return html`
      <div @keydown=${this.onKeydown}>
        ${this.renderHeader()}
        ${this.errors.length || this.notices.length
          ? html`<div class="notes" role="status">
              ${this.errors.map((error) => html`<p class="note error" data-testid="hash-error">${error}</p>`)}
              ${this.notices.map((notice) => html`<p class="note" data-testid="hash-notice">${notice}</p>`)}
            </div>`
          : nothing}
        <main>
          ${this.renderEditor()}
          <div class="run">${this.renderStatus()} ${this.renderLogs()} ${this.renderOutputs()}</div>
        </main>
      </div>
    `;
  }

  private renderHeader(): TemplateResult {
    const count = this.workers.length;
    const free = this.workers.reduce((sum, worker) => sum + worker.capacity.free, 0);
    let dot = '';
    let text = '';
    switch (this.connection) {
      case 'off':
        text = this.connectionError || 'enter a queue';
        break;
      case 'connecting':
        dot = 'busy';
        text = 'connecting…';
        break;
      case 'reconnecting':
        dot = 'warn';
        text = 'reconnecting…';
        break;
      case 'failed':
        dot = 'bad';
        text = 'signaling unreachable';
        break;
      case 'connected':
        dot = count > 0 ? 'ok' : 'warn';
        text = count > 0 ? `${count} worker${count > 1 ? 's' : ''} · ${free} free` : 'connected · no worker online';
        break;
    }
    return html`
      <header>
        <span class="brand">peerdock <small>run a container on your queue</small></span>
        <div class="queue">
          <label class="sr-only" for="queue">Queue</label>
          <input
            id="queue"
            type="text"
            spellcheck="false"
            autocomplete="off"
            placeholder="queue secret"
            .value=${this.queue}
            @change=${(event: Event) => (this.queue = (event.target as HTMLInputElement).value.trim())}
          />
          <button type="button" @click=${this.newQueue} title="Generate a new random queue">New queue</button>
        </div>
        <span class="conn" data-testid="connection" title=${this.connectionError}>
          <span class="dot ${dot}"></span><span>${text}</span>
        </span>
        <div class="workers" data-testid="workers" aria-label="Workers in this queue">
          ${count > 0
            ? this.workers.map(
                (worker) =>
                  html`<span
                    class="worker"
                    title=${`${worker.capacity.queued} queued${this.links.get(worker.workerId) ? `; ${describeConnection(this.links.get(worker.workerId)!)}` : ''}`}
                    >${worker.workerId} · ${worker.capacity.cores} cores · ${worker.capacity.free} free${this.links.get(worker.workerId)
                      ? ` · ${CONNECTION_LABELS[this.links.get(worker.workerId)!.kind]}`
                      : ''}</span
                  >`,
              )
            : this.connection === 'failed'
              ? html`<span style="color: var(--bad)">${this.connectionError}</span>`
              : this.connection === 'connected'
                ? html`<span>Start a worker on this queue: <code class="cmd">npx peerdock worker run --signal ${this.signalUrl()} ${this.queue}</code></span>`
                : html`<span>&nbsp;</span>`}
        </div>
      </header>
    `;
  }

  private renderEditor(): TemplateResult {
    const field = (id: string, label: string, value: string, set: (value: string) => void, placeholder = '', mono = true) => html`
      <label for=${id}>${label}</label>
      <input
        id=${id}
        class=${mono ? 'mono' : ''}
        type="text"
        spellcheck="false"
        autocomplete="off"
        placeholder=${placeholder}
        .value=${value}
        @input=${(event: Event) => set((event.target as HTMLInputElement).value)}
      />
    `;
    return html`
      <section aria-label="Job">
        <h2>Job</h2>
        ${field('image', 'Image', this.image, (value) => (this.image = value), 'alpine:3.20')}
        <label for="command">Command</label>
        <textarea
          id="command"
          class="command"
          rows="2"
          spellcheck="false"
          placeholder='sh -c "echo hello > /outputs/hello.txt"'
          .value=${this.command}
          @input=${(event: Event) => (this.command = (event.target as HTMLTextAreaElement).value)}
        ></textarea>
        <details ?open=${Boolean(this.entrypoint || this.workdir || this.maxDuration)}>
          <summary class="hint" style="margin-top: 10px; cursor: pointer">Entrypoint, workdir, max duration</summary>
          ${field('entrypoint', 'Entrypoint', this.entrypoint, (value) => (this.entrypoint = value), 'image default')}
          ${field('workdir', 'Working directory', this.workdir, (value) => (this.workdir = value), 'image default')}
          ${field('maxDuration', 'Max duration', this.maxDuration, (value) => (this.maxDuration = value), 'e.g. 10m (the worker caps it)')}
        </details>

        <label>Environment</label>
        ${this.env.map(
          (row, index) => html`
            <div class="row env-row">
              <input
                class="mono env-key"
                aria-label="Variable name"
                placeholder="NAME"
                .value=${row.key}
                @input=${(event: Event) => (this.env = this.env.map((r, i) => (i === index ? { ...r, key: (event.target as HTMLInputElement).value } : r)))}
              />
              <input
                class="mono"
                aria-label="Value"
                placeholder="value"
                .value=${row.value}
                @input=${(event: Event) =>
                  (this.env = this.env.map((r, i) => (i === index ? { ...r, value: (event.target as HTMLInputElement).value } : r)))}
              />
              <button type="button" class="icon" aria-label="Remove variable ${row.key}" @click=${() => (this.env = this.env.filter((_, i) => i !== index))}>
                ✕
              </button>
            </div>
          `,
        )}
        <div class="actions"><button type="button" class="small" @click=${this.addEnv}>+ Variable</button></div>

        <label>Input files <span class="hint">(in /inputs)</span></label>
        ${this.inputs.map((input) => this.renderInput(input))}
        <div class="actions">
          <button type="button" class="small" data-testid="add-input" @click=${this.addInput}>+ Text file</button>
          <button type="button" class="small" @click=${() => this.renderRoot.querySelector<HTMLInputElement>('input.picker')?.click()}>
            + Upload files…
          </button>
          <input type="file" multiple class="picker" hidden @change=${this.pickFiles} />
        </div>
        <p class="hint" style="margin: 12px 0 0">Files the job writes to <code>/outputs</code> come back as outputs. Ctrl+Enter runs.</p>
      </section>
    `;
  }

  private renderInput(input: InputFile): TemplateResult {
    const editable = input.text !== undefined && !input.fromMetapage;
    return html`
      <div class="file" data-testid="input-file">
        <div class="row">
          <input
            class="mono name"
            aria-label="File name"
            .value=${input.name}
            ?readonly=${input.fromMetapage}
            @input=${(event: Event) => this.updateInput(input.id, { name: (event.target as HTMLInputElement).value })}
          />
          <span class="meta">${input.fromMetapage ? 'from metapage · ' : ''}${input.blob ? formatBytes(input.blob.size) : ''}</span>
          ${input.fromMetapage
            ? nothing
            : html`<button
                type="button"
                class="icon"
                aria-label="Remove ${input.name}"
                @click=${() => (this.inputs = this.inputs.filter((other) => other.id !== input.id))}
              >
                ✕
              </button>`}
        </div>
        ${editable
          ? html`<textarea
              aria-label="Contents of ${input.name}"
              spellcheck="false"
              rows="4"
              .value=${input.text ?? ''}
              @input=${(event: Event) => this.updateInput(input.id, { text: (event.target as HTMLTextAreaElement).value })}
            ></textarea>`
          : nothing}
      </div>
    `;
  }

  private renderStatus(): TemplateResult {
    const phase = this.phase;
    const final = phase !== 'idle' && phase !== 'preparing' && isFinalState(phase);
    const active = this.running;
    let text: string;
    let dot = '';
    if (phase === 'idle') text = 'ready';
    else if (phase === 'preparing') text = 'preparing inputs';
    else text = describeState(phase);
    if (phase === 'running') text = `running ${formatDuration(this.now - this.phaseSince)}`;
    if (active) dot = 'busy';
    else if (phase === 'finished') dot = this.result?.exitCode === 0 ? 'ok' : 'bad';
    else if (phase === 'failed' || phase === 'timed-out') dot = 'bad';
    else if (phase === 'cancelled') dot = 'warn';
    if (phase === 'finished' && this.result?.exitCode !== 0 && this.result?.exitCode !== null) text = 'finished with an error';
    const progress = this.progress;
    return html`
      <section aria-label="Run">
        <div class="statusbar">
          <div class="status ${final ? phase : ''} ${phase === 'finished' && this.result?.exitCode ? 'nonzero' : ''}" data-testid="status" data-phase=${phase} role="status" aria-live="polite">
            <span class="dot ${dot}"></span>
            <span class="text">${text}</span>
            ${this.statusDetail ? html`<span class="sub" data-testid="status-detail">${this.statusDetail}</span>` : nothing}
          </div>
          ${active
            ? html`<button type="button" data-testid="cancel" @click=${this.cancel}>Cancel</button>`
            : html`<button type="button" class="primary" data-testid="run" @click=${() => void this.run().catch(() => {})}>
                ${final ? 'Run again' : 'Run'}
              </button>`}
        </div>
        <div class="progress ${progress === -1 ? 'indeterminate' : ''}" style="visibility: ${progress === undefined ? 'hidden' : 'visible'}">
          <div style="width: ${progress === undefined || progress < 0 ? 0 : Math.round(progress * 100)}%"></div>
        </div>
        ${this.jobId ? html`<div class="jobid" title="Job id: the sha256 of the job definition">job ${this.jobId}</div>` : nothing}
      </section>
    `;
  }

  private renderLogs(): TemplateResult {
    return html`
      <section class="logs" aria-label="Logs">
        <h2>
          Logs <span class="hint" style="text-transform:none; letter-spacing:0">stdout · <span style="color: var(--stderr)">stderr</span></span>
          <span class="spacer"></span>
          <button type="button" class="small" @click=${this.copyLogs} ?disabled=${this.logs.length === 0}>Copy</button>
        </h2>
        <pre class="log" data-testid="logs" tabindex="0" aria-label="Job output" @scroll=${this.onLogScroll}>${this.logs.length === 0
            ? html`<span class="empty">${this.phase === 'idle' ? 'Logs appear here when the job runs.' : 'No output yet.'}</span>`
            : this.logs.map((chunk) => html`<span class=${chunk.stream}>${unsafeHTML(chunk.html)}</span>`)}</pre>
        ${this.follow || this.logs.length === 0
          ? nothing
          : html`<button type="button" class="small jump" @click=${this.jumpToEnd}>↓ Follow</button>`}
      </section>
    `;
  }

  private renderOutputs(): TemplateResult {
    const ready = this.outputs.filter((output) => output.blob);
    return html`
      <section aria-label="Outputs">
        <h2>
          Outputs ${this.outputs.length ? html`<span class="hint">(${this.outputs.length})</span>` : nothing}
          <span class="spacer"></span>
          <button type="button" class="small" data-testid="download-all" ?disabled=${ready.length < 1} @click=${this.downloadAll}>
            Download all
          </button>
        </h2>
        ${this.outputs.length === 0
          ? html`<p class="empty-state">${isFinalState(this.phase as JobState) ? 'The job wrote nothing to /outputs.' : 'No outputs yet.'}</p>`
          : html`<ul class="outputs" data-testid="outputs">
              ${this.outputs.map((output) => this.renderOutput(output))}
            </ul>`}
      </section>
    `;
  }

  private renderOutput(output: OutputView): TemplateResult {
    const arriving = !output.blob;
    const fraction = output.size > 0 ? output.received / output.size : 0;
    const name = output.path.split('/').pop() ?? output.path;
    return html`
      <li data-testid="output" data-path=${output.path} data-reused=${output.reused ? 'true' : 'false'}>
        <div class="out">
          <span class="path" title=${output.path}>${output.path}</span>
          <span class="size" title=${output.reused ? 'this browser already had these bytes from an earlier job: not sent again' : ''}
            >${arriving ? `${formatBytes(output.received)} / ` : ''}${formatBytes(output.size)}${output.reused ? ' · already here' : ''}</span
          >
          ${output.preview && output.preview.kind !== 'none'
            ? html`<button
                type="button"
                class="small"
                aria-expanded=${output.open ? 'true' : 'false'}
                @click=${() => {
                  output.open = !output.open;
                  this.requestUpdate('outputs');
                }}
              >
                ${output.open ? 'Hide' : 'Preview'}
              </button>`
            : nothing}
          ${output.url ? html`<a class="button small download" href=${output.url} download=${name}>Download</a>` : nothing}
        </div>
        ${arriving
          ? html`<div class="progress"><div style="width: ${Math.round(fraction * 100)}%"></div></div>`
          : nothing}
        ${output.open && output.preview?.kind === 'text'
          ? html`<div class="preview"><pre>${output.preview.text}${output.preview.truncated ? '\n…' : ''}</pre></div>`
          : nothing}
        ${output.open && output.preview?.kind === 'image' ? html`<div class="preview"><img alt=${output.path} src=${output.url!} /></div>` : nothing}
      </li>
    `;
  }
}

export interface RunJobOutcome {
  jobId: string;
  result: JobResult;
  outputs: OutputView[];
}

function stripCached<T extends JobResult>(result: T): JobResult {
  const { jobId, state, exitCode, error, outputs, startedAt, durationMs } = result;
  return { jobId, state, exitCode, error, outputs, startedAt, durationMs };
}

/** ANSI colours as classes, so the palette follows the log panel (readable on its dark ground). */
function ansiUp(): AnsiUp {
  const ansi = new AnsiUp();
  ansi.use_classes = true;
  return ansi;
}

function quoteWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function formatDuration(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
