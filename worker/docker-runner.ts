import createDebug from 'debug';
import Docker from 'dockerode';
import { PassThrough, type Duplex } from 'node:stream';
import { PeerdockError } from '../protocol/errors.js';
import type { JobDefinition } from '../protocol/job.js';

const debug = createDebug('peerdock:docker');

/** Every container and network peerdock creates carries these labels, so it can be found and swept. */
export const LABEL_MANAGED = 'io.peerdock.managed';
export const LABEL_JOB = 'io.peerdock.job';
export const LABEL_WORKER = 'io.peerdock.worker';
export const LABEL_ROOM = 'io.peerdock.room';

export interface ContainerLimits {
  memoryBytes: number;
  pids: number;
  nanoCpus: number;
}

export const DEFAULT_LIMITS: ContainerLimits = { memoryBytes: 2 * 1024 ** 3, pids: 512, nanoCpus: 1e9 };

/**
 * Capabilities a typical image needs to run as root in its own files; everything else (raw
 * sockets, mounts, ptrace, module loading…) is dropped.
 */
const KEPT_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'SETGID', 'SETUID', 'KILL'];

export interface CreateRequest {
  jobId: string;
  definition: JobDefinition;
  inputsDir: string;
  outputsDir: string;
  labels: Record<string, string>;
  limits: ContainerLimits;
}

export interface FollowRequest {
  /** How long the container may run, counted from its start. */
  deadlineSeconds: number;
  /** Start it (a fresh container) or only follow it (one adopted after a worker restart). */
  start: boolean;
  onLog: (stream: 'stdout' | 'stderr', text: string) => void;
  onStarted: (startedAt: Date) => void;
  signal: AbortSignal;
  /** Stop following without touching the container (the worker is going away). */
  detach: AbortSignal;
}

export interface RunOutcome {
  exitCode: number | null;
  timedOut: boolean;
  cancelled: boolean;
  startedAt: Date;
  durationMs: number;
}

export interface LayerProgress {
  id: string;
  status: string;
  current: number;
  total: number;
}

export interface PullProgress {
  status: string;
  /** Bytes over all layers whose size is known so far. */
  current: number;
  total: number;
  layers: LayerProgress[];
}

export interface JobContainer {
  containerId: string;
  jobId: string;
  running: boolean;
}

/** dockerode behind one small surface: image presence, hardened runs, labelled clean-up. */
export class DockerRunner {
  constructor(readonly docker: Docker = new Docker()) {}

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      throw new PeerdockError(
        'ERR_DOCKER',
        `cannot reach the Docker engine (${(error as Error).message}): start Docker, or set DOCKER_HOST`,
      );
    }
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return false;
      throw dockerError(error, `inspecting image ${image}`);
    }
  }

  /** Pulls an image, reporting overall byte progress across its layers. */
  async pull(image: string, onProgress: (progress: PullProgress) => void): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.pull(image);
    } catch (error) {
      throw pullError(image, error);
    }
    const layers = new Map<string, LayerProgress>();
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (error: Error | null, events: Array<{ error?: string }>) => {
          const failure = error?.message ?? events?.find((event) => event.error)?.error;
          if (failure) reject(pullError(image, new Error(failure)));
          else resolve();
        },
        (event: { id?: string; status?: string; progressDetail?: { current?: number; total?: number }; error?: string }) => {
          // Layer events carry the layer id; "Pull complete" and friends come without sizes.
          if (event.id && event.id !== image.split(':').pop()) {
            const layer = layers.get(event.id) ?? { id: event.id, status: '', current: 0, total: 0 };
            layer.status = event.status ?? layer.status;
            if (event.progressDetail?.total) {
              layer.current = event.progressDetail.current ?? 0;
              layer.total = event.progressDetail.total;
            } else if (/complete|already exists/i.test(layer.status)) {
              layer.current = layer.total;
            }
            layers.set(event.id, layer);
          }
          let current = 0;
          let total = 0;
          for (const layer of layers.values()) {
            current += layer.current;
            total += layer.total;
          }
          onProgress({ status: event.status ?? '', current, total, layers: [...layers.values()].map((layer) => ({ ...layer })) });
        },
      );
    });
  }

  /** A hardened container on a network of its own, created but not started. */
  async create(request: CreateRequest): Promise<string> {
    const { definition } = request;
    const networkName = jobNetworkName(request.jobId);
    const labels = { [LABEL_MANAGED]: 'true', [LABEL_JOB]: request.jobId, ...request.labels };
    await this.removeNetwork(networkName);
    await this.docker
      .createNetwork({
        Name: networkName,
        Driver: 'bridge',
        Labels: labels,
        // Containers of different jobs cannot talk to each other.
        Options: { 'com.docker.network.bridge.enable_icc': 'false' },
      })
      .catch((error) => {
        throw dockerError(error, 'creating the job network');
      });
    try {
      const container = await this.docker.createContainer({
        Image: definition.image,
        Cmd: definition.command,
        Entrypoint: definition.entrypoint,
        WorkingDir: definition.workdir,
        Env: Object.entries(definition.env ?? {}).map(([key, value]) => `${key}=${value}`),
        Labels: labels,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        HostConfig: {
          Binds: [`${request.inputsDir}:/inputs:ro`, `${request.outputsDir}:/outputs`],
          CapDrop: ['ALL'],
          CapAdd: KEPT_CAPABILITIES,
          SecurityOpt: ['no-new-privileges'],
          PidsLimit: request.limits.pids,
          Memory: request.limits.memoryBytes,
          MemorySwap: request.limits.memoryBytes,
          NanoCpus: request.limits.nanoCpus,
          NetworkMode: networkName,
          AutoRemove: false,
        },
      });
      return container.id;
    } catch (error) {
      await this.removeNetwork(networkName);
      throw dockerError(error, `creating the container for ${definition.image}`);
    }
  }

  /**
   * Streams a container's output until it exits, enforcing the deadline and cancellation.
   * Works the same for a container just created and for one adopted after a restart.
   */
  async follow(containerId: string, request: FollowRequest): Promise<RunOutcome> {
    const container = this.docker.getContainer(containerId);
    const state = request.start ? undefined : (await container.inspect().catch((error) => Promise.reject(dockerError(error, 'inspecting the container')))).State;
    // An adopted container that exited while no worker listened has no live output to follow.
    const stream = !state || state.Running ? ((await container.attach({ stream: true, stdout: true, stderr: true, logs: false })) as unknown as Duplex) : undefined;
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    let streamEnded: Promise<unknown> = Promise.resolve();
    if (stream) {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      stdout.on('data', (chunk: Buffer) => request.onLog('stdout', decoders.stdout.decode(chunk, { stream: true })));
      stderr.on('data', (chunk: Buffer) => request.onLog('stderr', decoders.stderr.decode(chunk, { stream: true })));
      this.docker.modem.demuxStream(stream, stdout, stderr);
      streamEnded = new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', () => resolve());
      });
    }

    let timedOut = false;
    let cancelled = false;
    // `next-exit` for a container not started yet: `not-running` would return at once.
    const waited = container.wait({ condition: request.start ? 'next-exit' : 'not-running' });
    let startedAt: Date;
    if (state) startedAt = new Date(state.StartedAt);
    else {
      try {
        await container.start();
        startedAt = new Date();
      } catch (error) {
        stream?.destroy();
        throw dockerError(error, 'starting the container');
      }
    }
    request.onStarted(startedAt);
    const kill = () => container.kill().catch((error: Error) => debug('kill: %s', error.message));
    const deadline = setTimeout(
      () => {
        timedOut = true;
        void kill();
      },
      Math.max(0, startedAt.getTime() + request.deadlineSeconds * 1000 - Date.now()),
    );
    const onAbort = () => {
      cancelled = true;
      void container.stop({ t: 2 }).catch(kill);
    };
    request.signal.addEventListener('abort', onAbort, { once: true });
    if (request.signal.aborted) onAbort();
    let onDetach = () => {};
    const detached = new Promise<never>((_, reject) => {
      onDetach = () => reject(new PeerdockError('ERR_WORKER_STOPPING', 'the worker stopped following the container; a restarted worker adopts it'));
      if (request.detach.aborted) onDetach();
      else request.detach.addEventListener('abort', onDetach, { once: true });
    });
    detached.catch(() => {});
    try {
      const { StatusCode } = (await Promise.race([waited, detached])) as { StatusCode: number };
      // The last log bytes can trail the exit; wait briefly for the stream to drain.
      await Promise.race([streamEnded, new Promise((resolve) => setTimeout(resolve, 2000))]);
      for (const key of ['stdout', 'stderr'] as const) {
        const rest = decoders[key].decode();
        if (rest) request.onLog(key, rest);
      }
      return {
        exitCode: timedOut || cancelled ? null : StatusCode,
        timedOut,
        cancelled,
        startedAt,
        durationMs: Date.now() - startedAt.getTime(),
      };
    } catch (error) {
      if (error instanceof PeerdockError) throw error;
      throw dockerError(error, 'waiting for the container');
    } finally {
      clearTimeout(deadline);
      request.signal.removeEventListener('abort', onAbort);
      // The detach signal is the worker's, shared by every job: leave no listener behind.
      request.detach.removeEventListener('abort', onDetach);
      stream?.destroy();
    }
  }

  /** Everything a container wrote, demuxed: what a restarted worker stores for an adopted job. */
  async logs(containerId: string): Promise<Array<{ stream: 'stdout' | 'stderr'; data: string }>> {
    const buffer = (await this.docker.getContainer(containerId).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    const records: Array<{ stream: 'stdout' | 'stderr'; data: string }> = [];
    // The multiplexed format: [stream type, 0, 0, 0, size (uint32 BE)] + payload, repeated.
    for (let offset = 0; offset + 8 <= buffer.length; ) {
      const size = buffer.readUInt32BE(offset + 4);
      const data = buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
      records.push({ stream: buffer[offset] === 2 ? 'stderr' : 'stdout', data });
      offset += 8 + size;
    }
    return records;
  }

  async remove(containerId: string, jobId: string): Promise<void> {
    await this.docker
      .getContainer(containerId)
      .remove({ force: true, v: true })
      .catch((error: Error) => debug('remove failed: %s', error.message));
    await this.removeNetwork(jobNetworkName(jobId));
  }

  /** This worker's job containers, running or not. */
  async jobContainers(workerId: string): Promise<JobContainer[]> {
    const filters = JSON.stringify({ label: [`${LABEL_MANAGED}=true`, `${LABEL_WORKER}=${workerId}`] });
    const list = await this.docker.listContainers({ all: true, filters });
    return list.map((info) => ({ containerId: info.Id, jobId: info.Labels[LABEL_JOB] ?? '', running: info.State === 'running' }));
  }

  private async removeNetwork(name: string): Promise<void> {
    await this.docker
      .getNetwork(name)
      .remove()
      .catch(() => {});
  }

  /** Removes this worker's job networks that no job in hand claims (a crash leaves them). */
  async sweepNetworks(workerId: string, keepJobIds: Set<string>): Promise<void> {
    const filters = JSON.stringify({ label: [`${LABEL_MANAGED}=true`, `${LABEL_WORKER}=${workerId}`] });
    for (const info of await this.docker.listNetworks({ filters })) {
      if (!keepJobIds.has(info.Labels?.[LABEL_JOB] ?? '')) await this.removeNetwork(info.Id);
    }
  }
}

/** One network per job, named after it, so a restarted worker finds and removes it. */
function jobNetworkName(jobId: string): string {
  return `peerdock-${jobId.slice(0, 24)}`;
}

function dockerError(error: unknown, doing: string): PeerdockError {
  const message = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message;
  return new PeerdockError('ERR_DOCKER', `Docker failed while ${doing}: ${message}`, { cause: error });
}

function pullError(image: string, error: unknown): PeerdockError {
  const message = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message;
  return new PeerdockError(
    'ERR_IMAGE_NOT_FOUND',
    `image "${image}" is not on this worker and could not be pulled (${message.trim()}): check the name and tag, or load the image on the worker`,
    { cause: error },
  );
}
