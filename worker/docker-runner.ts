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

export interface RunRequest {
  jobId: string;
  definition: JobDefinition;
  inputsDir: string;
  outputsDir: string;
  labels: Record<string, string>;
  limits: ContainerLimits;
  deadlineSeconds: number;
  onLog: (stream: 'stdout' | 'stderr', text: string) => void;
  onStarted: () => void;
  signal: AbortSignal;
}

export interface RunOutcome {
  exitCode: number | null;
  timedOut: boolean;
  cancelled: boolean;
  startedAt: Date;
  durationMs: number;
}

export interface PullProgress {
  status: string;
  current: number;
  total: number;
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
    const layers = new Map<string, { current: number; total: number }>();
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (error: Error | null, events: Array<{ error?: string }>) => {
          const failure = error?.message ?? events?.find((event) => event.error)?.error;
          if (failure) reject(pullError(image, new Error(failure)));
          else resolve();
        },
        (event: { id?: string; status?: string; progressDetail?: { current?: number; total?: number }; error?: string }) => {
          if (event.id && event.progressDetail?.total) {
            layers.set(event.id, { current: event.progressDetail.current ?? 0, total: event.progressDetail.total });
          }
          let current = 0;
          let total = 0;
          for (const layer of layers.values()) {
            current += layer.current;
            total += layer.total;
          }
          onProgress({ status: event.status ?? '', current, total });
        },
      );
    });
  }

  async run(request: RunRequest): Promise<RunOutcome> {
    const { definition } = request;
    const networkName = `peerdock-${request.jobId.slice(0, 16)}-${Date.now().toString(36)}`;
    const labels = { [LABEL_MANAGED]: 'true', [LABEL_JOB]: request.jobId, ...request.labels };
    const network = await this.docker
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
    let container: Docker.Container | undefined;
    try {
      container = await this.docker
        .createContainer({
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
        })
        .catch((error) => {
          throw dockerError(error, `creating the container for ${definition.image}`);
        });
      return await this.attachAndWait(container, request);
    } finally {
      if (container) await container.remove({ force: true, v: true }).catch((error) => debug('remove failed: %s', error.message));
      await network.remove().catch((error: Error) => debug('network remove failed: %s', error.message));
    }
  }

  private async attachAndWait(container: Docker.Container, request: RunRequest): Promise<RunOutcome> {
    const stream = (await container.attach({ stream: true, stdout: true, stderr: true, logs: true })) as unknown as Duplex;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    stdout.on('data', (chunk: Buffer) => request.onLog('stdout', decoders.stdout.decode(chunk, { stream: true })));
    stderr.on('data', (chunk: Buffer) => request.onLog('stderr', decoders.stderr.decode(chunk, { stream: true })));
    this.docker.modem.demuxStream(stream, stdout, stderr);
    const streamEnded = new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', () => resolve());
    });

    let timedOut = false;
    let cancelled = false;
    // `next-exit`: the default condition returns at once for a container not started yet.
    const waited = container.wait({ condition: 'next-exit' });
    try {
      await container.start();
    } catch (error) {
      stream.destroy();
      throw dockerError(error, 'starting the container');
    }
    const startedAt = new Date();
    request.onStarted();
    const stopContainer = () => container.kill().catch((error: Error) => debug('kill: %s', error.message));
    const deadline = setTimeout(() => {
      timedOut = true;
      void stopContainer();
    }, request.deadlineSeconds * 1000);
    const onAbort = () => {
      cancelled = true;
      void container.stop({ t: 2 }).catch(stopContainer);
    };
    request.signal.addEventListener('abort', onAbort, { once: true });
    if (request.signal.aborted) onAbort();
    try {
      const { StatusCode } = (await waited) as { StatusCode: number };
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
    } finally {
      clearTimeout(deadline);
      request.signal.removeEventListener('abort', onAbort);
      stream.destroy();
    }
  }

  /** Removes containers and networks of this worker that no running job claims. */
  async sweep(workerId: string, keepJobIds: Set<string>): Promise<number> {
    const filters = JSON.stringify({ label: [`${LABEL_MANAGED}=true`, `${LABEL_WORKER}=${workerId}`] });
    let removed = 0;
    for (const info of await this.docker.listContainers({ all: true, filters })) {
      if (keepJobIds.has(info.Labels[LABEL_JOB] ?? '')) continue;
      await this.docker.getContainer(info.Id).remove({ force: true, v: true }).then(() => removed++, () => {});
    }
    for (const info of await this.docker.listNetworks({ filters })) {
      if (keepJobIds.has(info.Labels?.[LABEL_JOB] ?? '')) continue;
      await this.docker.getNetwork(info.Id).remove().catch(() => {});
    }
    return removed;
  }
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
