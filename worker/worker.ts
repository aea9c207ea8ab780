import createDebug from 'debug';
import { openFileSource } from '../files/node-files.js';
import { acceptPeers, type PeerSession, type Wrtc } from '../peer/connect.js';
import { preferActiveDtls } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { PeerdockError, toPeerdockError } from '../protocol/errors.js';
import { computeJobId, type JobDefinition } from '../protocol/job.js';
import { canTransition, type JobState } from '../protocol/job-state.js';
import type { ByteSink, Link } from '../protocol/link.js';
import { PROTOCOL_VERSION, type JobResult, type Message, type MessageOf } from '../protocol/messages.js';
import { DEFAULT_LIMITS, DockerRunner, LABEL_ROOM, LABEL_WORKER, type ContainerLimits, type PullProgress, type RunOutcome } from './docker-runner.js';
import { expireStore, type RetentionPolicy } from './housekeeping.js';
import { JobStore, type LogRecord } from './job-store.js';
import { SlotScheduler } from './slot-scheduler.js';

const debug = createDebug('peerdock:worker');

export interface WorkerOptions {
  signalUrl: string;
  queue: string;
  workerId: string;
  cores: number;
  dataDir: string;
  /** Longest a job may run; a job's own maxDuration is capped by it. */
  maxJobDurationSeconds?: number;
  /** Largest total of a job's inputs; a job over it is refused with ERR_TOO_LARGE. */
  maxInputBytes?: number;
  /** Largest total of a job's /outputs; a job over it fails with ERR_TOO_LARGE. */
  maxOutputBytes?: number;
  /** Logs past this many bytes per job are dropped, with a note. */
  maxLogBytes?: number;
  /** Stored results and cached inputs: how long and how much to keep. */
  retention?: RetentionPolicy;
  wrtc?: Wrtc;
  docker?: DockerRunner;
  limits?: Partial<ContainerLimits>;
  /** One line per notable event, for the operator's terminal. */
  report?: (line: string) => void;
}

/** The operator's ceilings when not set: what `peerdock worker run --help` documents. */
export const WORKER_DEFAULTS = {
  maxJobDurationSeconds: 3600,
  maxInputBytes: 10 * 1024 ** 3,
  maxOutputBytes: 10 * 1024 ** 3,
  maxLogBytes: 64 * 1024 ** 2,
};

export const DEFAULT_RETENTION: RetentionPolicy = { maxAgeMs: 7 * 24 * 3600_000, maxBytes: 20 * 1024 ** 3 };
const HOUSEKEEPING_INTERVAL_MS = 10 * 60_000;
const WANT_OUTPUTS_TIMEOUT_MS = 60_000;

/** A job this worker holds until it ends; every link that submitted or attached follows it. */
interface ActiveJob {
  jobId: string;
  definition: JobDefinition;
  state: JobState;
  followers: Set<Link>;
  abort: AbortController;
  logWrites: Promise<void>;
  logBytes: number;
  /** Log records kept so far (lines of logs.jsonl). */
  logCount: number;
  /** Links reading the logs so far before they follow live; what happens meanwhile waits here. */
  catchingUp: Map<Link, Message[]>;
  catchUps: Set<Promise<void>>;
  /** Resolves when a queued job is cancelled before it had its slot. */
  dequeued: Promise<JobResult>;
  dequeue: (result: JobResult) => void;
}

/** Per connected peer: the input files we asked it for, and its answers about outputs. */
interface PeerState {
  awaitedInputs: Map<string, { resolve: () => void; reject: (error: PeerdockError) => void }>;
  wantedOutputs: Map<string, (wanted: MessageOf<'want-outputs'>) => void>;
}

/**
 * Lends this machine to a queue: answers peers of the queue, takes their jobs, runs them with
 * Docker within the operator's limits, and streams logs and outputs back. Containers outlive
 * the process: a worker restarted on the same data folder adopts them.
 */
export class PeerdockWorker {
  readonly store: JobStore;
  readonly docker: DockerRunner;
  /** What this worker did since it started; tests and the operator read these. */
  readonly stats = { inputBytesReceived: 0, outputBytesSent: 0, containersStarted: 0, containersAdopted: 0, resultsReplayed: 0 };
  private readonly scheduler: SlotScheduler;
  private readonly active = new Map<string, ActiveJob>();
  private readonly links = new Set<Link>();
  private readonly peers = new WeakMap<Link, PeerState>();
  /** Inputs being received right now, by sha256, whichever peer sends them. */
  private readonly receivingInputs = new Map<string, Promise<void>>();
  /** Results being sent to clients right now; a draining worker waits for them. */
  private readonly deliveries = new Set<Promise<void>>();
  /** Aborted when the worker stops following its containers (shutdown). */
  private readonly detach = new AbortController();
  private readonly report: (line: string) => void;
  private signaling: SignalingClient | undefined;
  private stopAccepting: (() => void) | undefined;
  private housekeeping: ReturnType<typeof setInterval> | undefined;
  private stopping = false;

  readonly options: WorkerOptions & typeof WORKER_DEFAULTS;

  constructor(options: WorkerOptions) {
    this.options = { ...WORKER_DEFAULTS, ...stripUndefined(options) };
    this.store = new JobStore(options.dataDir);
    this.docker = options.docker ?? new DockerRunner();
    this.scheduler = new SlotScheduler(options.cores, () => this.announceCapacity());
    this.report = options.report ?? (() => {});
  }

  async start(): Promise<void> {
    await this.docker.ping();
    await this.store.init();
    // The room label needs the signaling keys; connect first, take peers only once adopted.
    this.signaling = await SignalingClient.connect({
      url: this.options.signalUrl,
      queue: this.options.queue,
      role: 'worker',
      workerId: this.options.workerId,
      capacity: this.capacity(),
    });
    await this.adoptContainers();
    await this.docker.sweepNetworks(this.options.workerId, new Set(this.active.keys()));
    await this.sweepUnclaimedJobs();
    await this.expire();
    this.housekeeping = setInterval(() => void this.expire(), HOUSEKEEPING_INTERVAL_MS);
    this.housekeeping.unref();
    this.stopAccepting = acceptPeers(this.signaling, { wrtc: this.options.wrtc, adjustRemoteSignal: preferActiveDtls }, (session) =>
      this.serve(session),
    );
  }

  get roomId(): string | undefined {
    return this.signaling?.keys.roomId;
  }

  /** Stops at once: running containers are left to a restarted worker to adopt. */
  stop(): Promise<void> {
    return this.shutdown(0);
  }

  /**
   * Stops taking jobs; jobs not started yet are handed back to their clients (which dispatch
   * them elsewhere); running jobs get `graceMs` to finish and deliver. Containers still running
   * after that are left running, to be adopted by the next worker on this data folder.
   */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      clearInterval(this.housekeeping);
      this.stopAccepting?.();
      this.signaling?.close();
      const handBack: JobResult['error'] = { code: 'ERR_WORKER_STOPPING', message: 'the worker is shutting down before this job started' };
      // Jobs still receiving inputs are handed back once their inputs are in (see onSubmit).
      for (const job of this.active.values()) {
        if (job.state === 'queued' && this.scheduler.remove(job.jobId)) {
          job.dequeue({ jobId: job.jobId, state: 'failed', exitCode: null, error: handBack, outputs: [] });
        }
      }
    }
    const deadline = Date.now() + graceMs;
    // Running jobs, and results still on their way to clients, get the grace period.
    while ((this.active.size > 0 || this.deliveries.size > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    this.detach.abort();
    // Give detached jobs a moment to tell their followers, then hang up.
    await new Promise((resolve) => setTimeout(resolve, this.active.size > 0 ? 200 : 0));
    for (const link of this.links) link.close();
  }

  private capacity() {
    return { cores: this.options.cores, free: this.stopping ? 0 : this.scheduler.free, queued: this.scheduler.queued };
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
      const answerWithError = (jobId: string) => (error: unknown) => {
        const problem = toPeerdockError(error);
        debug('%s %s failed: %s', message.t, jobId.slice(0, 12), problem.message);
        if (!link.closed) link.send({ t: 'error', code: problem.code, message: problem.message, jobId });
      };
      switch (message.t) {
        case 'submit':
          return void this.onSubmit(link, message).catch(answerWithError(message.jobId));
        case 'attach':
          return void this.onAttach(link, message.jobId).catch(answerWithError(message.jobId));
        case 'want-outputs':
          return wantedOutputs.get(message.jobId)?.(message);
        case 'cancel':
          return this.cancel(message.jobId);
        case 'error':
          return debug('peer %s reported %s: %s', remoteSocketId, message.code, message.message);
        default:
          link.send({ t: 'error', code: 'ERR_BAD_MESSAGE', message: `a worker does not accept "${message.t}" messages` });
      }
    });

    link.onClose((error) => {
      debug('peer %s left: %s', remoteSocketId, error.message);
      this.links.delete(link);
      // Its jobs go on: a client that comes back attaches again by job id.
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
    if (this.active.has(jobId)) return this.follow(link, this.active.get(jobId)!);
    const stored = await this.store.readResult(jobId);
    // Only a job that ran to its end is worth replaying; a failed or cancelled one runs again.
    if (stored?.state === 'finished') return this.replay(link, stored);
    // Another submission of the same job may have arrived while the result was read.
    if (this.active.has(jobId)) return this.follow(link, this.active.get(jobId)!);
    if (this.stopping) throw new PeerdockError('ERR_WORKER_STOPPING', 'this worker is shutting down: the job goes to another worker');

    const job = this.newJob(jobId, definition, 'sending-inputs', link);
    const result = this.acceptInputs(link, job).then(
      () => {
        if (job.abort.signal.aborted) return cancelledBeforeStart(job);
        if (this.stopping) return failedResult(jobId, new PeerdockError('ERR_WORKER_STOPPING', 'the worker is shutting down before this job started'));
        this.setState(job, 'queued');
        return Promise.race([this.scheduler.schedule(jobId, () => this.execute(job)), job.dequeued]);
      },
      (error) => failedResult(jobId, error),
    );
    await this.settle(job, result);
  }

  private async onAttach(link: Link, jobId: string): Promise<void> {
    const job = this.active.get(jobId);
    if (job) return this.follow(link, job);
    const stored = await this.store.readResult(jobId);
    if (stored) return this.replay(link, stored);
    throw new PeerdockError('ERR_UNKNOWN_JOB', `this worker holds no job ${jobId.slice(0, 12)}`);
  }

  /**
   * Another client of a job in progress (a second submission, an attach after a reload) shares
   * its run: it first gets the logs written so far, then follows live. What is logged while it
   * catches up is held back and sent after, so nothing is missed or doubled.
   */
  private follow(link: Link, job: ActiveJob): Promise<void> {
    link.send({ t: 'accepted', jobId: job.jobId, cached: false, missing: [] });
    const held: Message[] = [];
    job.catchingUp.set(link, held);
    const upTo = job.logCount;
    const catchUp = (async () => {
      try {
        await job.logWrites;
        let index = 0;
        for await (const record of this.store.readLogs(job.jobId)) {
          if (index++ >= upTo || link.closed) break;
          link.send({ t: 'log', jobId: job.jobId, ...record });
        }
      } finally {
        job.catchingUp.delete(link);
        if (!link.closed) {
          link.send({ t: 'state', jobId: job.jobId, state: job.state, position: this.scheduler.position(job.jobId) });
          for (const message of held) link.send(message);
          job.followers.add(link);
        }
      }
    })();
    job.catchUps.add(catchUp);
    return catchUp.finally(() => job.catchUps.delete(catchUp));
  }

  private async replay(link: Link, stored: JobResult): Promise<void> {
    this.report(`job ${short(stored.jobId)} replayed from the stored result`);
    this.stats.resultsReplayed++;
    link.send({ t: 'accepted', jobId: stored.jobId, cached: true, missing: [] });
    for await (const record of this.store.readLogs(stored.jobId)) link.send({ t: 'log', jobId: stored.jobId, ...record });
    await this.deliverResult(link, stored);
  }

  private newJob(jobId: string, definition: JobDefinition, state: JobState, follower?: Link): ActiveJob {
    let dequeue!: (result: JobResult) => void;
    const dequeued = new Promise<JobResult>((resolve) => (dequeue = resolve));
    const job: ActiveJob = {
      jobId,
      definition,
      state,
      followers: new Set(follower ? [follower] : []),
      abort: new AbortController(),
      logWrites: Promise.resolve(),
      logBytes: 0,
      logCount: 0,
      catchingUp: new Map(),
      catchUps: new Set(),
      dequeued,
      dequeue,
    };
    this.active.set(jobId, job);
    return job;
  }

  /** Waits for the job's end, stores it, and hands the result to everyone following. */
  private async settle(job: ActiveJob, running: Promise<JobResult>): Promise<void> {
    const result = await running.catch((error) => failedResult(job.jobId, error));
    this.active.delete(job.jobId);
    const code = result.error?.code;
    if (code === 'ERR_WORKER_STOPPING' || (code === 'ERR_PEER_LOST' && !result.startedAt)) {
      // Not an end: handed back before it started (its inputs never all arrived, or the worker
      // is stopping), or detached with its container left for the next worker to adopt. Sent as
      // an error, which clients answer by dispatching again.
      this.report(`job ${short(job.jobId)} handed back: ${result.error!.message}`);
      this.broadcast(job, { t: 'error', jobId: job.jobId, code: code!, message: result.error!.message });
      return;
    }
    this.report(
      `job ${short(job.jobId)} ${result.state}${result.exitCode !== null ? ` with exit code ${result.exitCode}` : ''}${result.error ? `: ${result.error.message}` : ''}`,
    );
    // Clients still catching up on the logs become followers first, so they get the result too.
    await Promise.all(job.catchUps);
    await Promise.all([...job.followers].map((follower) => this.deliverResult(follower, result)));
  }

  /** Asks the submitting peer for the inputs the cache lacks, from where a cut transfer stopped. */
  private async acceptInputs(link: Link, job: ActiveJob): Promise<void> {
    const { awaitedInputs } = this.peers.get(link)!;
    const wanted: Array<{ sha256: string; offset: number }> = [];
    const elsewhere: Array<Promise<void>> = [];
    const arrivals: Array<Promise<void>> = [];
    for (const { sha256 } of Object.values(job.definition.inputs)) {
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
    link.send({ t: 'accepted', jobId: job.jobId, cached: false, missing: wanted });
    try {
      await Promise.all(arrivals);
      await Promise.all(elsewhere).catch((error: PeerdockError) => {
        throw new PeerdockError('ERR_PEER_LOST', `another client sending the same input left (${error.message}): submit again`);
      });
    } finally {
      for (const { sha256 } of wanted) awaitedInputs.delete(sha256);
    }
  }

  /** Pull, prepare, run (or adopt), collect and store one job. */
  private async execute(job: ActiveJob, adopted?: { containerId: string; deadlineSeconds: number }): Promise<JobResult> {
    const { jobId, definition } = job;
    if (job.abort.signal.aborted) return cancelledBeforeStart(job);
    let containerId: string;
    let deadlineSeconds: number;
    if (adopted) {
      ({ containerId, deadlineSeconds } = adopted);
    } else {
      if (!(await this.docker.hasImage(definition.image))) {
        this.setState(job, 'pulling');
        let lastSent = 0;
        let lastStatus = '';
        let last: PullProgress | undefined;
        const send = (progress: PullProgress) => {
          lastSent = Date.now();
          lastStatus = progress.status;
          this.broadcast(job, { t: 'pull', jobId, image: definition.image, ...progress });
        };
        await this.docker.pull(definition.image, (progress) => {
          last = progress;
          // A new status (a layer starts, completes) goes out at once; bytes at most 5 times a second.
          if (progress.status !== lastStatus || Date.now() - lastSent >= 200) send(progress);
        });
        // The final figures, so the client's bar ends full even on a pull faster than the throttle.
        if (last) send({ ...last, status: 'pulled', current: last.total });
      }
      const { inputsDir, outputsDir } = await this.store.prepareJob(jobId, definition);
      deadlineSeconds = Math.min(definition.maxDuration ?? this.options.maxJobDurationSeconds, this.options.maxJobDurationSeconds);
      await this.store.writeJobMeta({ jobId, definition, deadlineSeconds });
      containerId = await this.docker.create({
        jobId,
        definition,
        inputsDir,
        outputsDir,
        labels: { [LABEL_WORKER]: this.options.workerId, [LABEL_ROOM]: this.roomId ?? '' },
        limits: { ...DEFAULT_LIMITS, ...this.options.limits },
      });
      await this.store.writeJobMeta({ jobId, definition, deadlineSeconds, containerId });
    }
    let outcome: RunOutcome;
    try {
      outcome = await this.docker.follow(containerId, {
        deadlineSeconds,
        start: !adopted,
        signal: job.abort.signal,
        detach: this.detach.signal,
        onStarted: () => {
          if (adopted) this.stats.containersAdopted++;
          else this.stats.containersStarted++;
          this.setState(job, 'running');
        },
        onLog: (stream, data) => this.log(job, { stream, data }),
      });
    } catch (error) {
      // Detached by a shutdown: leave the container be. Anything else: clean up.
      if (toPeerdockError(error).code !== 'ERR_WORKER_STOPPING') await this.docker.remove(containerId, jobId);
      throw error;
    }
    await job.logWrites;
    // An adopted job missed what it printed while no worker listened: keep the engine's full copy.
    if (adopted) await this.store.replaceLogs(jobId, await this.docker.logs(containerId));
    await this.docker.remove(containerId, jobId);
    if (outcome.timedOut) this.log(job, { stream: 'stderr', data: `\npeerdock: stopped after the ${deadlineSeconds}s deadline\n` });
    if (outcome.cancelled) this.log(job, { stream: 'stderr', data: '\npeerdock: cancelled\n' });
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
    await this.store.writeResult(result);
    return result;
  }

  /**
   * At start: containers of this worker that outlived the previous process are followed again
   * (they keep their slot); those no job folder explains are removed.
   */
  private async adoptContainers(): Promise<void> {
    for (const container of await this.docker.jobContainers(this.options.workerId)) {
      const meta = await this.store.readJobMeta(container.jobId);
      const stored = await this.store.readResult(container.jobId);
      if (!meta || meta.containerId !== container.containerId || stored || this.active.has(container.jobId)) {
        await this.docker.remove(container.containerId, container.jobId);
        continue;
      }
      const job = this.newJob(meta.jobId, meta.definition, 'running');
      for await (const _record of this.store.readLogs(meta.jobId)) job.logCount++;
      this.report(`job ${short(meta.jobId)} adopted from an earlier run (${container.running ? 'still running' : 'exited'})`);
      const adopted = { containerId: container.containerId, deadlineSeconds: meta.deadlineSeconds };
      void this.settle(job, this.scheduler.occupy(() => this.execute(job, adopted)));
    }
  }

  /** Job folders with neither a stored result nor a job in hand are what a crash left behind. */
  private async sweepUnclaimedJobs(): Promise<void> {
    for (const jobId of await this.store.jobIds()) {
      if (this.active.has(jobId) || (await this.store.readResult(jobId))) continue;
      await this.store.removeJob(jobId);
    }
  }

  private async expire(): Promise<void> {
    const keep = new Set<string>();
    for (const job of this.active.values()) {
      keep.add(job.jobId);
      for (const ref of Object.values(job.definition.inputs)) keep.add(ref.sha256);
    }
    const removed = await expireStore(this.options.dataDir, this.options.retention ?? DEFAULT_RETENTION, keep).catch((error) => {
      debug('housekeeping failed: %s', (error as Error).message);
      return 0;
    });
    if (removed > 0) this.report(`expired ${removed} stored result(s) and cached input(s)`);
  }

  private cancel(jobId: string): void {
    const job = this.active.get(jobId);
    if (!job) return;
    job.abort.abort();
    // A job still waiting for its slot never reaches Docker: it ends here.
    if (this.scheduler.remove(jobId)) job.dequeue({ jobId, state: 'cancelled', exitCode: null, outputs: [] });
  }

  private setState(job: ActiveJob, state: JobState): void {
    // protocol/job-state.ts is the one source of truth for what may follow what.
    if (job.state !== state && !canTransition(job.state, state)) {
      debug('job %s: refusing to go from %s to %s', short(job.jobId), job.state, state);
      return;
    }
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
    job.logCount++;
    this.broadcast(job, { t: 'log', jobId: job.jobId, ...record });
    job.logWrites = job.logWrites.then(() => this.store.appendLog(job.jobId, record)).catch((error) => debug('log write: %s', error.message));
  }

  private broadcast(job: ActiveJob, message: Message): void {
    for (const follower of job.followers) {
      if (!follower.closed) follower.send(message);
    }
    for (const held of job.catchingUp.values()) held.push(message);
  }

  /** Outputs manifest, the files the client asks for, then the result. */
  private deliverResult(link: Link, result: JobResult): Promise<void> {
    const delivery = this.sendResult(link, result);
    this.deliveries.add(delivery);
    return delivery.finally(() => this.deliveries.delete(delivery));
  }

  private async sendResult(link: Link, result: JobResult): Promise<void> {
    const peer = this.peers.get(link);
    if (link.closed || !peer) return;
    const { wantedOutputs } = peer;
    try {
      if (result.outputs.length > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const wanted = new Promise<MessageOf<'want-outputs'>>((resolve, reject) => {
          wantedOutputs.set(result.jobId, resolve);
          timer = setTimeout(() => reject(new PeerdockError('ERR_PEER_LOST', 'the client did not ask for outputs in time')), WANT_OUTPUTS_TIMEOUT_MS);
        });
        link.send({ t: 'outputs', jobId: result.jobId, files: result.outputs });
        const answer = await wanted.finally(() => {
          clearTimeout(timer);
          wantedOutputs.delete(result.jobId);
        });
        const paths = new Set(answer.paths);
        for (const file of result.outputs) {
          if (!paths.has(file.path)) continue;
          const source = await openFileSource(await this.store.outputFile(result.jobId, file.path));
          try {
            const offset = Math.min(answer.offsets?.[file.path] ?? 0, file.size);
            let sent = offset;
            await link.sendFile({ jobId: result.jobId, path: file.path, sha256: file.sha256, offset }, source, (done) => {
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

function failedResult(jobId: string, error: unknown): JobResult {
  return { jobId, state: 'failed', exitCode: null, error: toPeerdockError(error).toJSON(), outputs: [] };
}

/** A job its client cancelled before it reached Docker. */
function cancelledBeforeStart(job: ActiveJob): JobResult {
  return { jobId: job.jobId, state: 'cancelled', exitCode: null, outputs: [] };
}

function short(jobId: string): string {
  return jobId.slice(0, 12);
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, member]) => member !== undefined)) as T;
}
