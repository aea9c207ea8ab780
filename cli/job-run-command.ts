import meow from 'meow';
import { runJob, submitJob, type JobEvent, type RunJobResult } from '../client/run-job.js';
import { outputsDirectory, parseInputArgument, prepareInputs } from '../client/node-files-for-job.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { PeerdockError, toPeerdockError } from '../protocol/errors.js';
import { buildJobDefinition, computeJobId, type JobSpec } from '../protocol/job.js';
import { describeState } from '../protocol/job-state.js';
import { assertQueue } from '../protocol/queue-keys.js';
import { durationFlag, fromEnv, iceServersFlag, signalUrlFlag } from './common.js';
import { finishJob, showEvent } from './job-report.js';
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
    --detach                Return once a worker holds the job and its inputs (--json: {"jobId","state"});
                            follow it later with "peerdock job attach" 
    --verbose               Show progress lines even when stderr is not a terminal, among them
                            how the worker was reached (direct, through STUN, relayed by TURN)
    --ice-servers <json>    Your own STUN/TURN servers, used first and in addition to   PEERDOCK_ICE_SERVERS
                            the signaling server's, e.g. '[{"urls":"turn:h:3478","username":"u","credential":"p"}]'

  Exit codes
    the container's exit code when it ran; 124 timed out; 125 the job failed to run
    (see the message); 130 cancelled; 1 other errors; 2 wrong usage

  Examples
    $ peerdock job run my-queue-6a1f0c --image alpine:3.20 \\
        --command 'sh -c "wc -l /inputs/data.csv > /outputs/count.txt"' \\
        --input ./data.csv --outputs ./out
`;

export async function run(argv: string[]): Promise<void> {
  // argv: what follows `peerdock job run`
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
      detach: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      iceServers: { type: 'string' },
    },
  });
  const input = cli.input;
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
  onInterrupt(progress, cancel);
  const common = {
    signaling,
    peer: { wrtc: nodeWrtc(), iceServers: iceServersFlag(cli.flags.iceServers ?? fromEnv('ICE_SERVERS')) },
    jobId,
    definition,
    inputs: inputs.sources,
    ...outputsDirectory(cli.flags.outputs),
    waitForWorkerMs: waitMs,
    signal: cancel.signal,
    onEvent: (event: JobEvent) => showEvent(event, progress),
  };
  if (cli.flags.detach) {
    try {
      const held = await submitJob(common);
      progress.clear();
      if (cli.flags.json) process.stdout.write(`${JSON.stringify({ jobId, state: held.state })}\n`);
      else process.stdout.write(`job ${jobId} is ${describeState(held.state)} on worker ${held.workerId}; follow it with:\n  peerdock job attach ${queue} ${jobId}\n`);
      process.exit(0);
    } finally {
      signaling.close();
      await inputs.close();
    }
  }
  let result: RunJobResult | undefined;
  let failure: PeerdockError | undefined;
  try {
    result = await runJob(common);
  } catch (error) {
    failure = toPeerdockError(error);
  } finally {
    progress.clear();
    signaling.close();
    await inputs.close();
  }
  finishJob(jobId, result, failure, { json: cli.flags.json, outputs: cli.flags.outputs, progress });
}

/**
 * Ctrl-C cancels the job: on a terminal after a second Ctrl-C within 3 s confirms it (a stray key
 * must not kill a long job); piped, at once. After cancelling, one more Ctrl-C quits.
 */
export function onInterrupt(progress: ProgressLine, cancel: AbortController): void {
  let armedUntil = 0;
  const handler = () => {
    if (cancel.signal.aborted) process.exit(130);
    if (process.stderr.isTTY && Date.now() > armedUntil) {
      armedUntil = Date.now() + 3000;
      progress.note('press Ctrl-C again within 3 s to cancel the job on the worker');
      return;
    }
    progress.note('cancelling… (Ctrl-C again to quit at once)');
    cancel.abort();
  };
  process.on('SIGINT', handler);
}
