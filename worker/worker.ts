import createDebug from 'debug';
import { acceptPeers, type PeerSession, type Wrtc } from '../peer/connect.js';
import { preferActiveDtls } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { openFileSource } from '../files/node-files.js';
import { PeerdockError, toPeerdockError } from '../protocol/errors.js';
import { computeJobId, type JobDefinition } from '../protocol/job.js';
import type { JobState } from '../protocol/job-state.js';
import type { ByteSink, Link } from '../protocol/link.js';
import { PROTOCOL_VERSION, type JobResult, type Message, type MessageOf } from '../protocol/messages.js';
import { DEFAULT_LIMITS, DockerRunner, LABEL_ROOM, LABEL_WORKER, type ContainerLimits } from './docker-runner.js';
import { JobStore, type LogRecord } from './job-store.js';
import { SlotScheduler } from './slot-scheduler.js';

const debug = createDebug('peerdock:worker');

export interface WorkerOptions {
  signalUrl: string;
  queue: string;
  workerId: string;
  cores: number;
  dataDir: string;
  maxJobDurationSeconds: number;
  maxInputBytes: number;
  /** Largest total of a job's /outputs; a job over it fails with ERR_TOO_LARGE. */
  maxOutputBytes: number;
  /** Logs past this many bytes per job are dropped, with a note. */
  maxLogBytes: number;
  wrtc?: Wrtc;
  docker?: DockerRunner;
  limits?: Partial<ContainerLimits>;
  /** One line per notable event, for the operator's terminal. */
  report?: (line: string) => void;
}

/** A job this worker holds until it ends; every link that submitted it follows it. */
interface ActiveJob {
  jobId: string;
  definition: JobDefinition;
  state: JobState;
  followers: Set<Link>;
  abort: AbortController;
  logWrites: Promise<void>;
  logBytes: number;
}

interface PeerState {
  awaitedInputs: Map<string, { resolve: () => void; reject: (error: PeerdockError) => void }>;
  wantedOutputs: Map<string, (paths: string[]) => void>;
}

const WANT_OUTPUTS_TIMEOUT_MS = 60_000;

/**
 * Lends this machine to a queue: answers peers of the queue, takes their jobs, runs them with
 * Docker within the operator's limits, and streams logs and outputs back.
 */
export class PeerdockWorker {
  readonly store: JobStore;
  readonly docker: DockerRunner;
  private readonly scheduler: SlotScheduler;
  private readonly active = new Map<string, ActiveJob>();
  private signaling: SignalingClient | undefined;
  private stopAccepting: (() => void) | undefined;
  private readonly links = new Set<Link>();
  /** Inputs being received right now, by sha256, whichever peer sends them. */
  private readonly receivingInputs = new Map<string, Promise<void>>();
  /** What this worker did since it started; tests and the operator read these. */
  readonly stats = { inputBytesReceived: 0, outputBytesSent: 0, containersStarted: 0, resultsReplayed: 0 };
  /** Per connected peer: the input files we asked it for, and its answers about outputs. */
  private readonly peers = new WeakMap<Link, PeerState>();
  private readonly report: (line: string) => void;

  constructor(readonly options: WorkerOptions) {
    this.store = new JobStore(options.dataDir);
    this.docker = options.docker ?? new DockerRunner();
    this.scheduler = new SlotScheduler(options.cores, () => this.announceCapacity());
    this.report = options.report ?? (() => {});
  }

  async start(): Promise<void> {
    await this.docker.ping();
    await this.store.init();
    const swept = await this.docker.sweep(this.options.workerId, new Set());
    if (swept > 0) this.report(`removed ${swept} leftover container(s) of an earlier run`);
    this.signaling = await SignalingClient.connect({
      url: this.options.signalUrl,
      queue: this.options.queue,
      role: 'worker',
      workerId: this.options.workerId,
      capacity: this.capacity(),
    });
    this.stopAccepting = acceptPeers(this.signaling, { wrtc: this.options.wrtc, adjustRemoteSignal: preferActiveDtls }, (session) =>
      this.serve(session),
    );
  }

  get roomId(): string | undefined {
    return this.signaling?.keys.roomId;
  }

  async stop(): Promise<void> {
    this.stopAccepting?.();
    this.signaling?.close();
    for (const link of this.links) link.close();
  }

  private capacity() {
    return { cores: this.options.cores, free: this.scheduler.free, queued: this.scheduler.queued };
  }

  private announceCapacity(): void {
    this.signaling?.setCapacity(this.capacity());
    for (const job of this.active.values()) {
      const position = this.scheduler.position(job.jobId);
      if (job.state === 'queued' && position !== undefined) this.broadcast(job, { t: 'state', jobId: job.jobId, state: 'queued', position });
    }
  }

  /** One connected peer: its messages, the input files it sends, its departure. */
  private serve({ link, remoteSocketId }: PeerSession): void {
    debug('peer %s connected', remoteSocketId);
    this.links.add(link);
    const state: PeerState = { awaitedInputs: new Map(), wantedOutputs: new Map() };
    this.peers.set(link, state);
    const { awaitedInputs, wantedOutputs } = state;

    link.acceptFiles((start) => {
      const waiter = awaitedInputs.get(start.sha256);
      if (start.jobId || start.path || !waiter) {
        throw new PeerdockError('ERR_BAD_MESSAGE', `this worker did not ask for file ${start.sha256.slice(0, 12)}`);
      }
      const sink = this.store.inputSink(start.sha256, start.offset ?? 0);
      const stats = this.stats;
      return {
        async write(chunk) {
          await sink.write(chunk);
          stats.inputBytesReceived += chunk.byteLength;
        },
        async finish() {
          const sha256 = await sink.finish();
          if (sha256 === start.sha256) waiter.resolve();
          return sha256;
        },
        async abort(error) {
          waiter.reject(error);
          await sink.abort(error);
        },
      } satisfies ByteSink;
    });

    link.onMessage((message) => {
      switch (message.t) {
        case 'submit':
          void this.onSubmit(link, message).catch((error) => {
            const problem = toPeerdockError(error);
            debug('submit %s failed: %s', message.jobId.slice(0, 12), problem.message);
            if (!link.closed) link.send({ t: 'error', code: problem.code, message: problem.message, jobId: message.jobId });
          });
          return;
        case 'want-outputs':
          wantedOutputs.get(message.jobId)?.(message.paths);
          return;
        case 'cancel':
          this.cancel(message.jobId);
          return;
        case 'error':
          debug('peer %s reported %s: %s', remoteSocketId, message.code, message.message);
          return;
        default:
          link.send({ t: 'error', code: 'ERR_BAD_MESSAGE', message: `a worker does not accept "${message.t}" messages` });
      }
    });

    link.onClose((error) => {
      debug('peer %s left: %s', remoteSocketId, error.message);
      this.links.delete(link);
      for (const job of this.active.values()) job.followers.delete(link);
      for (const waiter of awaitedInputs.values()) waiter.reject(error);
    });
  }

  private async onSubmit(link: Link, message: MessageOf<'submit'>): Promise<void> {
    const { jobId, definition } = message;
    if (message.v !== PROTOCOL_VERSION) {
      throw new PeerdockError('ERR_PROTOCOL_VERSION', `this worker speaks protocol ${PROTOCOL_VERSION}, the client ${message.v}: update peerdock`);
    }
    if ((await computeJobId(definition)) !== jobId) {
      throw new PeerdockError('ERR_JOB_ID_MISMATCH', 'the job id does not match its definition');
    }
    const inputBytes = Object.values(definition.inputs).reduce((sum, ref) => sum + ref.size, 0);
    if (inputBytes > this.options.maxInputBytes) {
      throw new PeerdockError(
        'ERR_TOO_LARGE',
        `the inputs total ${inputBytes} bytes, over this worker's limit of ${this.options.maxInputBytes} (worker flag --max-input-size)`,
      );
    }
    const stored = await this.store.readResult(jobId);
    if (stored) {
      this.report(`job ${short(jobId)} replayed from the stored result`);
      this.stats.resultsReplayed++;
      link.send({ t: 'accepted', jobId, cached: true, missing: [] });
      for await (const record of this.store.readLogs(jobId)) link.send({ t: 'log', jobId, ...record });
      return this.deliverResult(link, stored);
    }

    const running = this.active.get(jobId);
    if (running) {
      running.followers.add(link);
      link.send({ t: 'accepted', jobId, cached: false, missing: [] });
      link.send({ t: 'state', jobId, state: running.state, position: this.scheduler.position(jobId) });
      return;
    }

    const job: ActiveJob = {
      jobId,
      definition,
      state: 'sending-inputs',
      followers: new Set([link]),
      abort: new AbortController(),
      logWrites: Promise.resolve(),
      logBytes: 0,
    };
    this.active.set(jobId, job);
    const result = await this.acceptAndRun(link, job).catch((error): JobResult => {
      const problem = toPeerdockError(error);
      return { jobId, state: 'failed', exitCode: null, error: problem.toJSON(), outputs: [] };
    });
    this.active.delete(jobId);
    this.report(`job ${short(jobId)} ${result.state}${result.exitCode !== null ? ` with exit code ${result.exitCode}` : ''}${result.error ? `: ${result.error.message}` : ''}`);
    await Promise.all([...job.followers].map((follower) => this.deliverResult(follower, result)));
  }

  private async acceptAndRun(link: Link, job: ActiveJob): Promise<JobResult> {
    const { jobId, definition } = job;
    const { awaitedInputs } = this.peers.get(link)!;
    const wanted: Array<{ sha256: string; offset: number }> = [];
    const elsewhere: Array<Promise<void>> = [];
    const arrivals: Array<Promise<void>> = [];
    for (const { sha256 } of Object.values(definition.inputs)) {
      if (wanted.some((entry) => entry.sha256 === sha256) || (await this.store.hasInput(sha256))) continue;
      const inFlight = this.receivingInputs.get(sha256);
      if (inFlight) {
        // Another peer is sending these bytes right now: wait for that rather than write twice.
        elsewhere.push(inFlight);
        continue;
      }
      const arrival = new Promise<void>((resolve, reject) => awaitedInputs.set(sha256, { resolve, reject }));
      arrival.catch(() => {});
      this.receivingInputs.set(sha256, arrival);
      void arrival.finally(() => this.receivingInputs.delete(sha256)).catch(() => {});
      arrivals.push(arrival);
      wanted.push({ sha256, offset: await this.store.partialInputSize(sha256) });
    }
    link.send({ t: 'accepted', jobId, cached: false, missing: wanted });
    try {
      await Promise.all(arrivals);
      await Promise.all(elsewhere).catch((error: PeerdockError) => {
        throw new PeerdockError('ERR_PEER_LOST', `another client sending the same input left (${error.message}): submit again`);
      });
    } finally {
      for (const { sha256 } of wanted) awaitedInputs.delete(sha256);
    }
    if (job.abort.signal.aborted) return { jobId, state: 'cancelled', exitCode: null, outputs: [] };
    this.setState(job, 'queued');
    return this.scheduler.schedule(jobId, () => this.run(job));
  }

  private async run(job: ActiveJob): Promise<JobResult> {
    const { jobId, definition } = job;
    if (job.abort.signal.aborted) return { jobId, state: 'cancelled', exitCode: null, outputs: [] };
    if (!(await this.docker.hasImage(definition.image))) {
      this.setState(job, 'pulling');
      let lastSent = 0;
      await this.docker.pull(definition.image, (progress) => {
        if (Date.now() - lastSent < 200) return;
        lastSent = Date.now();
        this.broadcast(job, { t: 'pull', jobId, image: definition.image, ...progress });
      });
    }
    const { inputsDir, outputsDir } = await this.store.prepareJob(jobId, definition);
    const deadlineSeconds = Math.min(definition.maxDuration ?? this.options.maxJobDurationSeconds, this.options.maxJobDurationSeconds);
    const outcome = await this.docker.run({
      jobId,
      definition,
      inputsDir,
      outputsDir,
      labels: { [LABEL_WORKER]: this.options.workerId, [LABEL_ROOM]: this.roomId ?? '' },
      limits: { ...DEFAULT_LIMITS, ...this.options.limits },
      deadlineSeconds,
      signal: job.abort.signal,
      onStarted: () => {
        this.stats.containersStarted++;
        this.setState(job, 'running');
      },
      onLog: (stream, data) => this.log(job, { stream, data }),
    });
    if (outcome.timedOut) this.log(job, { stream: 'stderr', data: `\npeerdock: stopped after the ${deadlineSeconds}s deadline\n` });
    const { files, refused } = await this.store.collectOutputs(jobId);
    for (const path of refused) {
      this.log(job, { stream: 'stderr', data: `peerdock: output "${path}" was not returned: only regular files are (symlinks are never followed)\n` });
    }
    await job.logWrites;
    const outputBytes = files.reduce((sum, file) => sum + file.size, 0);
    if (outputBytes > this.options.maxOutputBytes) {
      throw new PeerdockError(
        'ERR_TOO_LARGE',
        `the job left ${outputBytes} bytes in /outputs, over this worker's limit of ${this.options.maxOutputBytes} (worker flag --max-output-size)`,
      );
    }
    const result: JobResult = {
      jobId,
      state: outcome.cancelled ? 'cancelled' : outcome.timedOut ? 'timed-out' : 'finished',
      exitCode: outcome.exitCode,
      outputs: files,
      startedAt: outcome.startedAt.toISOString(),
      durationMs: outcome.durationMs,
      ...(outcome.timedOut ? { error: { code: 'ERR_JOB_TIMEOUT', message: `the job ran past its ${deadlineSeconds}s deadline` } } : {}),
    };
    // Only a job that ran to its end is a result worth replaying; anything else runs again.
    if (result.state === 'finished') await this.store.writeResult(result);
    return result;
  }

  private cancel(jobId: string): void {
    const job = this.active.get(jobId);
    if (!job) return;
    job.abort.abort();
    if (this.scheduler.remove(jobId)) {
      // It never started: settle it here, since its slot task will not run.
      this.active.delete(jobId);
      const result: JobResult = { jobId, state: 'cancelled', exitCode: null, outputs: [] };
      for (const follower of job.followers) void this.deliverResult(follower, result);
    }
  }

  private setState(job: ActiveJob, state: JobState): void {
    job.state = state;
    this.broadcast(job, { t: 'state', jobId: job.jobId, state, position: this.scheduler.position(job.jobId) });
  }

  private log(job: ActiveJob, record: LogRecord): void {
    const limit = this.options.maxLogBytes;
    if (job.logBytes > limit) return;
    job.logBytes += record.data.length;
    if (job.logBytes > limit) {
      record = { stream: 'stderr', data: `\npeerdock: logs past ${limit} bytes are not kept (worker flag --max-log-size)\n` };
    }
    this.broadcast(job, { t: 'log', jobId: job.jobId, ...record });
    job.logWrites = job.logWrites.then(() => this.store.appendLog(job.jobId, record)).catch((error) => debug('log write: %s', error.message));
  }

  private broadcast(job: ActiveJob, message: Message): void {
    for (const follower of job.followers) {
      if (!follower.closed) follower.send(message);
    }
  }

  /** Outputs manifest, the files the client asks for, then the result. */
  private async deliverResult(link: Link, result: JobResult): Promise<void> {
    const peer = this.peers.get(link);
    if (link.closed || !peer) return;
    const { wantedOutputs } = peer;
    try {
      if (result.outputs.length > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const wanted = new Promise<string[]>((resolve, reject) => {
          wantedOutputs.set(result.jobId, resolve);
          timer = setTimeout(() => reject(new PeerdockError('ERR_PEER_LOST', 'the client did not ask for outputs in time')), WANT_OUTPUTS_TIMEOUT_MS);
        });
        link.send({ t: 'outputs', jobId: result.jobId, files: result.outputs });
        const paths = new Set(
          await wanted.finally(() => {
            clearTimeout(timer);
            wantedOutputs.delete(result.jobId);
          }),
        );
        for (const file of result.outputs) {
          if (!paths.has(file.path)) continue;
          const source = await openFileSource(await this.store.outputFile(result.jobId, file.path));
          try {
            let sent = 0;
            await link.sendFile({ jobId: result.jobId, path: file.path, sha256: file.sha256 }, source, (done) => {
              this.stats.outputBytesSent += done - sent;
              sent = done;
            });
          } finally {
            await source.close();
          }
        }
      }
      link.send({ t: 'result', result });
    } catch (error) {
      debug('delivering %s failed: %s', short(result.jobId), (error as Error).message);
    }
  }
}

function short(jobId: string): string {
  return jobId.slice(0, 12);
}
