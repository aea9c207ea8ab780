import meow from 'meow';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { PeerdockError } from '../protocol/errors.js';
import { assertQueue } from '../protocol/queue-keys.js';
import { PeerdockWorker } from '../worker/worker.js';
import { defaultDataDir, durationFlag, fromEnv, iceServersFlag, positiveInteger, signalUrlFlag, sizeFlag } from './common.js';

const help = `
  Usage
    $ peerdock worker run <queue> [options]

  Lends this machine's Docker engine to a queue. Browsers (and "peerdock job run") that know the
  queue find this worker through the signaling server, then send it jobs, inputs and receive
  logs and outputs directly. Containers run hardened: capabilities dropped, no new privileges,
  memory and process limits, a network of their own, a deadline.

  Options
    --cores <n>               Jobs run at once; more wait in line (default 1)      PEERDOCK_CORES
    --signal <url>            Signaling server (default http://127.0.0.1:8080)     PEERDOCK_SIGNAL
    --data-dir <dir>          Job folders, stored results and the input cache     PEERDOCK_DATA_DIR
                              (default ~/.peerdock/worker)
    --max-job-duration <d>    Longest a job may run, e.g. 90s, 10m, 2h (default 1h) PEERDOCK_MAX_JOB_DURATION
    --max-input-size <size>   Largest input set per job, e.g. 512M (default 10G)   PEERDOCK_MAX_INPUT_SIZE
    --max-output-size <size>  Largest /outputs per job (default 10G)               PEERDOCK_MAX_OUTPUT_SIZE
    --max-log-size <size>     Logs kept per job; the rest is dropped (default 64M)  PEERDOCK_MAX_LOG_SIZE
    --memory <size>           Memory limit per container (default 2G)             PEERDOCK_MEMORY
    --keep-results <d>        Stored results and cached inputs expire after (default 7d) PEERDOCK_KEEP_RESULTS
    --max-store-size <size>   ...and the oldest go past this total (default 20G)   PEERDOCK_MAX_STORE_SIZE
    --shutdown-grace <d>      On SIGTERM/Ctrl-C: stop taking jobs, hand waiting ones back,
                              give running ones this long to finish (default 30s); containers
                              still running are left for the next start to adopt. A second
                              signal exits at once.                                 PEERDOCK_SHUTDOWN_GRACE
    --id <name>               Name shown to clients (default: host name + data dir) PEERDOCK_ID
    --ice-servers <json>      This worker's own STUN/TURN servers, used first and in  PEERDOCK_ICE_SERVERS
                              addition to the signaling server's, e.g.
                              '[{"urls":"turn:turn.example.org:3478","username":"u","credential":"p"}]'

  Examples
    $ peerdock worker run --cores=2 my-queue-6a1f0c
    $ peerdock worker run --cores 4 --signal https://signal.example.org my-queue-6a1f0c
`;

export async function run(argv: string[]): Promise<void> {
  const cli = meow(help, {
    importMeta: import.meta,
    description: false,
    argv,
    allowUnknownFlags: false,
    flags: {
      cores: { type: 'string' },
      signal: { type: 'string' },
      dataDir: { type: 'string' },
      maxJobDuration: { type: 'string' },
      maxInputSize: { type: 'string' },
      maxOutputSize: { type: 'string' },
      maxLogSize: { type: 'string' },
      memory: { type: 'string' },
      keepResults: { type: 'string' },
      maxStoreSize: { type: 'string' },
      shutdownGrace: { type: 'string' },
      id: { type: 'string' },
      iceServers: { type: 'string' },
    },
  });
  const [subcommand, ...input] = cli.input;
  if (subcommand !== 'run') throw new PeerdockError('ERR_INVALID_FLAG', 'usage: peerdock worker run <queue> [options] (see --help)');
  const queue = input[0] ?? fromEnv('QUEUE');
  if (!queue) throw new PeerdockError('ERR_INVALID_FLAG', 'the queue is missing: peerdock worker run <queue>');
  if (input.length > 1) throw new PeerdockError('ERR_INVALID_FLAG', `unexpected argument "${input[1]}"`);
  assertQueue(queue);
  const dataDir = resolve(cli.flags.dataDir ?? fromEnv('DATA_DIR') ?? defaultDataDir('worker'));
  const workerId = cli.flags.id ?? fromEnv('ID') ?? defaultWorkerId(dataDir);
  if (!/^[\w.@-]{1,64}$/.test(workerId)) {
    throw new PeerdockError('ERR_INVALID_FLAG', `--id "${workerId}" may use letters, digits, . _ @ - only (at most 64)`);
  }
  const cores = positiveInteger(cli.flags.cores ?? fromEnv('CORES'), 'cores', 1);
  const worker = new PeerdockWorker({
    signalUrl: signalUrlFlag(cli.flags.signal),
    queue,
    workerId,
    cores,
    dataDir,
    maxJobDurationSeconds: durationFlag(cli.flags.maxJobDuration ?? fromEnv('MAX_JOB_DURATION'), 'max-job-duration', '1h'),
    maxInputBytes: sizeFlag(cli.flags.maxInputSize ?? fromEnv('MAX_INPUT_SIZE'), 'max-input-size', '10G'),
    maxOutputBytes: sizeFlag(cli.flags.maxOutputSize ?? fromEnv('MAX_OUTPUT_SIZE'), 'max-output-size', '10G'),
    maxLogBytes: sizeFlag(cli.flags.maxLogSize ?? fromEnv('MAX_LOG_SIZE'), 'max-log-size', '64M'),
    limits: { memoryBytes: sizeFlag(cli.flags.memory ?? fromEnv('MEMORY'), 'memory', '2G') },
    retention: {
      maxAgeMs: durationFlag(cli.flags.keepResults ?? fromEnv('KEEP_RESULTS'), 'keep-results', '7d') * 1000,
      maxBytes: sizeFlag(cli.flags.maxStoreSize ?? fromEnv('MAX_STORE_SIZE'), 'max-store-size', '20G'),
    },
    wrtc: nodeWrtc({ iceServers: iceServersFlag(cli.flags.iceServers ?? fromEnv('ICE_SERVERS')) }),
    report: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
  });
  const graceSeconds = durationFlag(cli.flags.shutdownGrace ?? fromEnv('SHUTDOWN_GRACE'), 'shutdown-grace', '30s');
  await worker.start();
  process.stdout.write(`peerdock worker ${workerId} ready: ${cores} core(s), data in ${dataDir}\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      process.stdout.write(`${signal} again: exiting now; running containers are left for the next start\n`);
      process.exit(1);
    }
    stopping = true;
    // Stop taking jobs first (synchronously, inside shutdown), then say so.
    const drained = worker.shutdown(graceSeconds * 1000);
    process.stdout.write(`${signal}: taking no more jobs; waiting up to ${graceSeconds}s for running ones (again to exit now)\n`);
    void drained.then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

export function defaultWorkerId(dataDir: string): string {
  const host = hostname().replace(/[^\w.-]/g, '-').slice(0, 40) || 'worker';
  return `${host}-${createHash('sha256').update(dataDir).digest('hex').slice(0, 6)}`;
}
