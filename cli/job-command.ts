import meow from 'meow';
import { runJob, type JobEvent, type RunJobResult } from '../client/run-job.js';
import { outputsDirectory, parseInputArgument, prepareInputs } from '../client/node-files-for-job.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { PeerdockError, toPeerdockError } from '../protocol/errors.js';
import { buildJobDefinition, computeJobId, type JobSpec } from '../protocol/job.js';
import { describeState } from '../protocol/job-state.js';
import { assertQueue } from '../protocol/queue-keys.js';
import { durationFlag, fromEnv, signalUrlFlag } from './common.js';
import { ProgressLine } from './progress-line.js';

const help = `
  Usage
    $ peerdock job run <queue> --image <image> [options]

  Runs a container on a worker of the queue. The job (image, command, env, inputs) goes straight
  to the worker over WebRTC; its stdout and stderr are printed here as they come; every file the
  container leaves in /outputs is written under --outputs, nested paths kept. Exits with the
  container's exit code. The same job again is answered from the worker's stored result.

  Options
    --image <image>         Docker image, e.g. alpine:3.20 (required)
    --command <cmd>         Command, split like a shell would: 'sh -c "echo hi > /outputs/a"'
    --entrypoint <cmd>      Replace the image's entrypoint
    --workdir <dir>         Working directory in the container
    --env K=V               Environment variable (repeatable)
    --input FILE[=NAME]     A file to put in /inputs, as NAME (default: its file name) (repeatable)
    --outputs <dir>         Where to write /outputs (default ./outputs)
    --max-duration <d>      Ask for a deadline, e.g. 30s, 10m (the worker may cap it)
    --signal <url>          Signaling server (default http://127.0.0.1:8080)      PEERDOCK_SIGNAL
    --wait <d>              How long to wait for a worker to be online (default 30s) PEERDOCK_WAIT
    --json                  Print one JSON line with the result at the end
    --verbose               Show progress lines even when stderr is not a terminal

  Exit codes
    the container's exit code when it ran; 124 timed out; 125 the job failed to run
    (see the message); 130 cancelled; 1 other errors; 2 wrong usage

  Examples
    $ peerdock job run my-queue-6a1f0c --image alpine:3.20 \\
        --command 'sh -c "wc -l /inputs/data.csv > /outputs/count.txt"' \\
        --input ./data.csv --outputs ./out
`;

export async function run(argv: string[]): Promise<void> {
  const cli = meow(help, {
    importMeta: import.meta,
    description: false,
    argv,
    allowUnknownFlags: false,
    flags: {
      image: { type: 'string' },
      command: { type: 'string' },
      entrypoint: { type: 'string' },
      workdir: { type: 'string' },
      env: { type: 'string', isMultiple: true },
      input: { type: 'string', isMultiple: true },
      outputs: { type: 'string', default: './outputs' },
      maxDuration: { type: 'string' },
      signal: { type: 'string' },
      wait: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const [subcommand, ...input] = cli.input;
  if (subcommand !== 'run') throw new PeerdockError('ERR_INVALID_FLAG', 'usage: peerdock job run <queue> --image <image> [options] (see --help)');
  const queue = input[0] ?? fromEnv('QUEUE');
  if (!queue) throw new PeerdockError('ERR_INVALID_FLAG', 'the queue is missing: peerdock job run <queue> --image <image>');
  if (input.length > 1) throw new PeerdockError('ERR_INVALID_FLAG', `unexpected argument "${input[1]}": quote the command, e.g. --command 'sh -c "…"'`);
  assertQueue(queue);
  if (!cli.flags.image) throw new PeerdockError('ERR_INVALID_FLAG', '--image is required, e.g. --image alpine:3.20');
  const env: Record<string, string> = {};
  for (const pair of cli.flags.env ?? []) {
    const split = pair.indexOf('=');
    if (split < 1) throw new PeerdockError('ERR_INVALID_FLAG', `--env "${pair}" must be KEY=VALUE`);
    env[pair.slice(0, split)] = pair.slice(split + 1);
  }
  const waitMs = durationFlag(cli.flags.wait ?? fromEnv('WAIT'), 'wait', '30s') * 1000;
  const signalUrl = signalUrlFlag(cli.flags.signal);

  const inputs = await prepareInputs((cli.flags.input ?? []).map(parseInputArgument));
  const spec: JobSpec = {
    image: cli.flags.image,
    command: cli.flags.command,
    entrypoint: cli.flags.entrypoint,
    workdir: cli.flags.workdir,
    env,
    maxDuration: cli.flags.maxDuration,
  };
  const definition = buildJobDefinition(spec, inputs.refs);
  const jobId = await computeJobId(definition);
  const progress = new ProgressLine(process.stderr, cli.flags.verbose);
  progress.note(`job ${jobId.slice(0, 12)}`);

  const signaling = await SignalingClient.connect({ url: signalUrl, queue, role: 'client' });
  const cancel = new AbortController();
  process.once('SIGINT', () => {
    progress.note('cancelling… (Ctrl-C again to quit at once)');
    cancel.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  let result: RunJobResult | undefined;
  let failure: PeerdockError | undefined;
  try {
    result = await runJob({
      signaling,
      peer: { wrtc: nodeWrtc() },
      jobId,
      definition,
      inputs: inputs.sources,
      ...outputsDirectory(cli.flags.outputs),
      waitForWorkerMs: waitMs,
      signal: cancel.signal,
      onEvent: (event) => showEvent(event, progress),
    });
  } catch (error) {
    failure = toPeerdockError(error);
  } finally {
    progress.clear();
    signaling.close();
    await inputs.close();
  }

  const error = failure ?? (result?.error ? new PeerdockError(result.error.code, result.error.message) : undefined);
  if (error && !cli.flags.json) process.stderr.write(`peerdock: ${error.code}: ${error.message}\n`);
  if (result && !cli.flags.json) {
    const summary = `job ${jobId.slice(0, 12)} ${result.state}${result.exitCode !== null ? ` (exit code ${result.exitCode})` : ''}${result.cached ? ', from the stored result' : ''}; ${result.outputs.length} output(s) in ${cli.flags.outputs}`;
    progress.note(summary);
  }
  if (cli.flags.json) {
    const line = {
      jobId,
      state: result?.state ?? 'failed',
      exitCode: result?.exitCode ?? null,
      cached: result?.cached ?? false,
      outputs: result?.outputs ?? [],
      ...(error ? { error: error.toJSON() } : {}),
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  process.exit(exitCodeFor(result, failure));
}

function exitCodeFor(result: RunJobResult | undefined, failure: PeerdockError | undefined): number {
  if (failure) return failure.code === 'ERR_CANCELLED' ? 130 : failure.code === 'ERR_INVALID_FLAG' ? 2 : 125;
  switch (result?.state) {
    case 'finished':
      return result.exitCode ?? 125;
    case 'timed-out':
      return 124;
    case 'cancelled':
      return 130;
    default:
      return 125;
  }
}

function showEvent(event: JobEvent, progress: ProgressLine): void {
  switch (event.type) {
    case 'log':
      progress.clear();
      (event.stream === 'stdout' ? process.stdout : process.stderr).write(event.data);
      return;
    case 'state':
      return progress.note(`${describeState(event.state)}${event.position ? ` (position ${event.position})` : ''}`);
    case 'worker':
      return progress.note(`worker ${event.workerId}`);
    case 'retry':
      return progress.note(`lost the connection to worker ${event.workerId} (${event.reason}); dispatching again (attempt ${event.attempt + 1})`);
    case 'pull':
      return progress.bar(`pulling image: ${event.status}`, event.current, event.total);
    case 'upload':
      return progress.bar('sending inputs', event.done, event.total);
    case 'download':
      return progress.bar(`receiving ${event.path}`, event.done, event.total);
  }
}


