import createDebug from 'debug';
import { dialPeer, type PeerOptions } from '../peer/connect.js';
import type { ConnectionReport } from '../peer/connection-report.js';
import type { SignalingClient } from '../peer/signaling-client.js';
import { PeerdockError, toPeerdockError } from '../protocol/errors.js';
import type { JobDefinition } from '../protocol/job.js';
import type { JobState } from '../protocol/job-state.js';
import type { ByteSink, ByteSource, Link } from '../protocol/link.js';
import type { JobResult, Message, OutputFile } from '../protocol/messages.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import type { PresenceWorker } from '../protocol/signaling-events.js';

const debug = createDebug('peerdock:client');

export type JobEvent =
  | { type: 'state'; state: JobState; position?: number }
  | { type: 'worker'; workerId: string }
  /** The data channel to the worker is open; `connection` says how (direct, STUN, TURN relay). */
  | { type: 'connected'; workerId: string; connection?: ConnectionReport }
  | { type: 'retry'; attempt: number; workerId: string; reason: string }
  | { type: 'pull'; status: string; current: number; total: number; layers?: Array<{ id: string; status: string; current: number; total: number }> }
  | { type: 'log'; stream: 'stdout' | 'stderr'; data: string }
  | { type: 'upload'; done: number; total: number }
  | { type: 'download'; path: string; done: number; total: number };

/** What following a job needs, whether it is submitted here or attached to by its id. */
export interface FollowJobOptions {
  signaling: SignalingClient;
  peer?: PeerOptions;
  jobId: string;
  /**
   * Where an output goes; called only for the outputs wanted. With an offset, the sink already
   * holds that many bytes of the file (a resumed transfer).
   */
  openOutput: (file: OutputFile, offset: number) => ByteSink | Promise<ByteSink>;
  /**
   * Outputs already held (by hash) can be skipped (false); a partly received one can resume
   * ({ offset }). Default: want all, from the start.
   */
  wantOutput?: (file: OutputFile) => boolean | { offset: number } | Promise<boolean | { offset: number }>;
  /** How long to wait for a worker of the queue to be online. */
  waitForWorkerMs?: number;
  /** Dispatches in all, counting the first (default 5). */
  maxAttempts?: number;
  /** After a lost connection, how long the same worker may take to come back (default 10 s). */
  workerGraceMs?: number;
  onEvent?: (event: JobEvent) => void;
  /** Aborting cancels the job on the worker. */
  signal?: AbortSignal;
}

export interface RunJobOptions extends FollowJobOptions {
  definition: JobDefinition;
  /** Input contents by sha256: only those the worker lacks are read. */
  inputs: Map<string, ByteSource>;
}

export interface RunJobResult extends JobResult {
  cached: boolean;
  workerId: string;
  /** How the last connection to the worker was made, when getStats() could tell. */
  connection?: ConnectionReport;
}

export interface DetachedJob {
  jobId: string;
  /** Where the job stood when the worker held it: queued, pulling, running, or already ended. */
  state: JobState;
  workerId: string;
}

/** How often a job is dispatched again after its connection was lost, and how long to wait. */
const DEFAULT_MAX_ATTEMPTS = 5;
const DEFAULT_WORKER_GRACE_MS = 10_000;
const RETRIABLE = new Set(['ERR_PEER_LOST', 'ERR_CONNECT_TIMEOUT', 'ERR_WORKER_STOPPING']);

type Mode = 'submit' | 'detach' | 'attach';

/**
 * The browser-side dispatcher, shared by the frame and `peerdock job run`: finds a worker of the
 * queue with room, connects to it directly, submits the job, sends the inputs it lacks, follows
 * state and logs, and receives the outputs. A lost connection dispatches again, to the same
 * worker if it comes back within the grace period (the job and half-sent inputs are still there),
 * else to another one; the job id makes a second submission join the first run.
 */
export function runJob(options: RunJobOptions): Promise<RunJobResult> {
  return dispatch(options, 'submit') as Promise<RunJobResult>;
}

/** Submits a job and returns as soon as a worker holds it and all its inputs. */
export function submitJob(options: RunJobOptions): Promise<DetachedJob> {
  return dispatch(options, 'detach') as Promise<DetachedJob>;
}

/**
 * Follows a job by id alone (after a reload, from another terminal): live logs from now on,
 * then its outputs and result. Asks each worker of the queue until one holds it.
 */
export function attachJob(options: FollowJobOptions): Promise<RunJobResult> {
  return dispatch(options, 'attach') as Promise<RunJobResult>;
}

async function dispatch(options: FollowJobOptions & Partial<RunJobOptions>, mode: Mode): Promise<RunJobResult | DetachedJob> {
  const emit = options.onEvent ?? (() => {});
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const waitMs = options.waitForWorkerMs ?? 30_000;
  let previous: string | undefined;
  /** Workers not to try again: one that is stopping, one we cannot reach at all. */
  const avoid = new Set<string>();
  /**
   * Connections that died: presence can list a killed worker's socket for a while, so that
   * socket is not dialed again; the same worker restarted comes back on a new one.
   */
  const deadSockets = new Set<string>();
  const connectFailures = new Map<string, number>();
  let lastProblem: PeerdockError | undefined;
  let lastWorker = '';
  for (let attempt = 1; ; attempt++) {
    if (mode !== 'attach') emit({ type: 'state', state: 'dispatching' });
    let candidates: PresenceWorker[];
    try {
      candidates =
        mode === 'attach' && !previous
          ? await allWorkers(options.signaling, waitMs, options.signal)
          : [
              await waitForWorker(options.signaling, waitMs, options.signal, {
                workerId: previous,
                graceMs: options.workerGraceMs ?? DEFAULT_WORKER_GRACE_MS,
                avoid,
                deadSockets,
              }),
            ];
    } catch (error) {
      // Waited in vain for another worker: the reason we left the last one says more.
      if (lastProblem && toPeerdockError(error).code === 'ERR_NO_WORKER') throw lastProblem;
      throw error;
    }
    for (const worker of candidates) {
      try {
        const outcome = await followOn(worker, options, mode, emit);
        return { ...outcome, workerId: worker.workerId };
      } catch (error) {
        lastProblem = toPeerdockError(error);
        previous = lastWorker = worker.workerId;
        if (lastProblem.code === 'ERR_UNKNOWN_JOB') continue;
        // A stopping worker is not tried again; one we could not connect to, after a second
        // failure (a single quick ICE failure under load is worth one more try).
        const failures = (connectFailures.get(worker.workerId) ?? 0) + (lastProblem.code === 'ERR_CONNECT_TIMEOUT' ? 1 : 0);
        connectFailures.set(worker.workerId, failures);
        if (lastProblem.code === 'ERR_WORKER_STOPPING' || failures >= 2) {
          avoid.add(worker.workerId);
          previous = undefined;
        }
        // A connection that was up and went silent, or a socket the server says is gone, is dead;
        // a dial that failed on the way (an ICE/DTLS hiccup under load) is simply tried again.
        const whileDialing = (error as { whileDialing?: boolean }).whileDialing === true;
        if (lastProblem.code === 'ERR_PEER_LOST' && (!whileDialing || /left the queue/.test(lastProblem.message))) {
          deadSockets.add(worker.socketId);
        }
        break;
      }
    }
    const problem = lastProblem!;
    if (problem.code === 'ERR_UNKNOWN_JOB') {
      throw new PeerdockError('ERR_UNKNOWN_JOB', `no worker online in this queue holds job ${options.jobId.slice(0, 12)}: check the job id and queue`);
    }
    if (!RETRIABLE.has(problem.code) || attempt >= maxAttempts || options.signal?.aborted) throw problem;
    emit({ type: 'retry', attempt, workerId: lastWorker, reason: problem.message });
    await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 4000)));
  }
}

async function followOn(
  worker: PresenceWorker,
  options: FollowJobOptions & Partial<RunJobOptions>,
  mode: Mode,
  emit: (event: JobEvent) => void,
): Promise<Omit<RunJobResult, 'workerId'> | Omit<DetachedJob, 'workerId'>> {
  emit({ type: 'worker', workerId: worker.workerId });
  const { link, connection } = await dialPeer(options.signaling, worker.socketId, options.peer).catch((error: unknown) => {
    throw Object.assign(toPeerdockError(error), { whileDialing: true });
  });
  emit({ type: 'connected', workerId: worker.workerId, ...(connection ? { connection } : {}) });
  try {
    const outcome = await followOverLink(link, options, mode, emit);
    return mode === 'detach' || !connection ? outcome : { ...outcome, connection };
  } finally {
    link.close();
  }
}

/** Waits until at least one worker is present, then lists them all. */
async function allWorkers(signaling: SignalingClient, timeoutMs: number, signal?: AbortSignal): Promise<PresenceWorker[]> {
  await waitForWorker(signaling, timeoutMs, signal);
  return [...signaling.workers];
}

/**
 * Picks the worker with the most free slots (then the shortest queue), waiting for one if none.
 * With `prefer`, the named worker is chosen if it is present or returns within the grace period.
 */
export function waitForWorker(
  signaling: SignalingClient,
  timeoutMs: number,
  signal?: AbortSignal,
  prefer: { workerId?: string; graceMs: number; avoid?: Set<string>; deadSockets?: Set<string> } = { graceMs: 0 },
): Promise<PresenceWorker> {
  const startedAt = Date.now();
  const pick = (present: PresenceWorker[]) => {
    const workers = present.filter((worker) => !prefer.avoid?.has(worker.workerId) && !prefer.deadSockets?.has(worker.socketId));
    const preferred = prefer.workerId ? workers.find((worker) => worker.workerId === prefer.workerId) : undefined;
    if (preferred) return preferred;
    if (prefer.workerId && Date.now() - startedAt < prefer.graceMs) return undefined;
    return [...workers].sort((a, b) => b.capacity.free - a.capacity.free || a.capacity.queued - b.capacity.queued)[0];
  };
  const now = pick(signaling.workers);
  if (now) return Promise.resolve(now);
  return new Promise<PresenceWorker>((resolve, reject) => {
    const finish = (error?: PeerdockError, worker?: PresenceWorker) => {
      clearTimeout(timer);
      clearInterval(graceCheck);
      stop();
      signal?.removeEventListener('abort', onAbort);
      if (worker) resolve(worker);
      else reject(error);
    };
    const timer = setTimeout(
      () =>
        finish(
          new PeerdockError(
            'ERR_NO_WORKER',
            `no worker is online for this queue (waited ${Math.round(timeoutMs / 1000)}s): start one with "peerdock worker run <queue>" against the same signaling server`,
          ),
        ),
      Math.max(timeoutMs, prefer.workerId ? prefer.graceMs : 0),
    );
    const retry = () => {
      const worker = pick(signaling.workers);
      if (worker) finish(undefined, worker);
    };
    const stop = signaling.onPresence(retry);
    // Once the grace period is over, any worker already present will do.
    const graceCheck = setInterval(retry, 500);
    const onAbort = () => finish(new PeerdockError('ERR_CANCELLED', 'cancelled while waiting for a worker'));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function followOverLink(
  link: Link,
  options: FollowJobOptions & Partial<RunJobOptions>,
  mode: Mode,
  emit: (event: JobEvent) => void,
): Promise<Omit<RunJobResult, 'workerId'> | Omit<DetachedJob, 'workerId'>> {
  const { jobId } = options;
  let cached = false;
  return new Promise((resolve, reject) => {
    const cleanups: Array<() => void> = [];
    const finish = (outcome: Omit<RunJobResult, 'workerId'> | Omit<DetachedJob, 'workerId'> | PeerdockError) => {
      cleanups.forEach((cleanup) => cleanup());
      if (outcome instanceof PeerdockError) reject(outcome);
      else resolve(outcome);
    };
    const onAbort = () => {
      if (!link.closed) link.send({ t: 'cancel', jobId });
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) queueMicrotask(onAbort);
    cleanups.push(() => options.signal?.removeEventListener('abort', onAbort));
    cleanups.push(link.onClose((error) => finish(new PeerdockError('ERR_PEER_LOST', `lost the worker before the job ended: ${error.message}`))));

    link.acceptFiles(async (start) => {
      if (start.jobId !== jobId || !start.path) throw new PeerdockError('ERR_BAD_MESSAGE', 'unexpected file from the worker');
      const path = start.path;
      const sink = await options.openOutput({ path, size: start.size, sha256: start.sha256 }, start.offset ?? 0);
      let done = start.offset ?? 0;
      return {
        async write(chunk) {
          await sink.write(chunk);
          done += chunk.byteLength;
          emit({ type: 'download', path, done, total: start.size });
        },
        finish: () => sink.finish(),
        abort: (error) => sink.abort(error),
      };
    });

    const handle = async (message: Message) => {
      if ('jobId' in message && message.jobId !== undefined && message.jobId !== jobId) return;
      switch (message.t) {
        case 'accepted':
          cached = message.cached;
          if (message.missing.length > 0) await sendInputs(link, message.missing, options as RunJobOptions, emit);
          if (mode === 'detach' && cached) finish({ jobId, state: 'finished' });
          return;
        case 'state':
          emit({ type: 'state', state: message.state, position: message.position });
          if (mode === 'detach' && message.state !== 'sending-inputs' && message.state !== 'dispatching') finish({ jobId, state: message.state });
          return;
        case 'pull':
          return emit({ type: 'pull', status: message.status, current: message.current, total: message.total, layers: message.layers });
        case 'log':
          return emit({ type: 'log', stream: message.stream, data: message.data });
        case 'outputs': {
          const wanted: string[] = [];
          const offsets: Record<string, number> = {};
          for (const file of message.files) {
            const want = options.wantOutput ? await options.wantOutput(file) : true;
            if (want === false) continue;
            wanted.push(file.path);
            if (typeof want === 'object' && want.offset > 0) offsets[file.path] = want.offset;
          }
          link.send({ t: 'want-outputs', jobId, paths: wanted, ...(Object.keys(offsets).length > 0 ? { offsets } : {}) });
          return;
        }
        case 'result':
          if (mode === 'detach') return finish({ jobId, state: message.result.state });
          return finish({ ...message.result, cached });
        case 'error':
          return finish(new PeerdockError(message.code, message.message));
        default:
          debug('ignoring %s', message.t);
      }
    };
    cleanups.push(link.onMessage((message) => void handle(message).catch((error) => finish(toPeerdockError(error)))));
    if (mode === 'attach') link.send({ t: 'attach', jobId });
    else link.send({ t: 'submit', v: PROTOCOL_VERSION, jobId, definition: options.definition! });
  });
}

async function sendInputs(
  link: Link,
  missing: Array<{ sha256: string; offset: number }>,
  options: RunJobOptions,
  emit: (event: JobEvent) => void,
): Promise<void> {
  emit({ type: 'state', state: 'sending-inputs' });
  const sources = missing.map(({ sha256, offset }) => {
    const source = options.inputs.get(sha256);
    if (!source) throw new PeerdockError('ERR_INPUT_MISSING', `the worker asked for input ${sha256.slice(0, 12)}, which this job does not have`);
    return { sha256, offset, source };
  });
  const total = sources.reduce((sum, { source, offset }) => sum + source.size - offset, 0);
  let before = 0;
  for (const { sha256, offset, source } of sources) {
    try {
      await link.sendFile({ sha256, offset }, source, (done) => emit({ type: 'upload', done: before + done - offset, total }));
    } catch (error) {
      const problem = toPeerdockError(error);
      if (problem.code !== 'ERR_HASH_MISMATCH') throw problem;
      const names = Object.entries(options.definition.inputs)
        .filter(([, ref]) => ref.sha256 === sha256)
        .map(([name]) => `"${name}"`);
      throw new PeerdockError(
        'ERR_HASH_MISMATCH',
        `input ${names.join(', ')} arrived corrupted at the worker (its content changed since it was hashed, or was damaged on the way): ${problem.message}`,
      );
    }
    before += source.size - offset;
  }
}
