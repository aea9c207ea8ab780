import meow from 'meow';
import { outputsDirectory } from '../client/node-files-for-job.js';
import { attachJob, type JobEvent, type RunJobResult } from '../client/run-job.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { PeerdockError, toPeerdockError } from '../protocol/errors.js';
import { jobIdSchema } from '../protocol/job.js';
import { assertQueue } from '../protocol/queue-keys.js';
import { durationFlag, fromEnv, signalUrlFlag } from './common.js';
import { onInterrupt } from './job-run-command.js';
import { finishJob, showEvent } from './job-report.js';
import { ProgressLine } from './progress-line.js';

const help = `
  Usage
    $ peerdock job attach <queue> <jobId> [options]

  Follows a job by its id: one still running (its logs from now on), or one that has ended and
  is stored on a worker. Writes its outputs and exits with its exit code, like "job run".

  Options
    --outputs <dir>    Where to write /outputs (default ./outputs)
    --signal <url>     Signaling server (default http://127.0.0.1:8080)      PEERDOCK_SIGNAL
    --wait <d>         How long to wait for a worker to be online (default 30s) PEERDOCK_WAIT
    --json             Print one JSON line with the result at the end (its "state" is finished,
                       failed, cancelled or timed-out)
    --verbose          Show progress lines even when stderr is not a terminal
`;

export async function run(argv: string[]): Promise<void> {
  const cli = meow(help, {
    importMeta: import.meta,
    description: false,
    argv,
    allowUnknownFlags: false,
    flags: {
      outputs: { type: 'string', default: './outputs' },
      signal: { type: 'string' },
      wait: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const { queue, jobId } = queueAndJobId(cli.input, 'attach');
  const progress = new ProgressLine(process.stderr, cli.flags.verbose);
  const signaling = await SignalingClient.connect({ url: signalUrlFlag(cli.flags.signal), queue, role: 'client' });
  const cancel = new AbortController();
  onInterrupt(progress, cancel);
  let result: RunJobResult | undefined;
  let failure: PeerdockError | undefined;
  try {
    result = await attachJob({
      signaling,
      peer: { wrtc: nodeWrtc() },
      jobId,
      ...outputsDirectory(cli.flags.outputs),
      waitForWorkerMs: durationFlag(cli.flags.wait ?? fromEnv('WAIT'), 'wait', '30s') * 1000,
      signal: cancel.signal,
      onEvent: (event: JobEvent) => showEvent(event, progress),
    });
  } catch (error) {
    failure = toPeerdockError(error);
  } finally {
    progress.clear();
    signaling.close();
  }
  finishJob(jobId, result, failure, { json: cli.flags.json, outputs: cli.flags.outputs, progress });
}

export function queueAndJobId(input: readonly string[], command: string): { queue: string; jobId: string } {
  const usage = `usage: peerdock job ${command} <queue> <jobId>`;
  if (input.length !== 2) throw new PeerdockError('ERR_INVALID_FLAG', usage);
  const [queue, jobId] = input as [string, string];
  assertQueue(queue);
  if (!jobIdSchema.safeParse(jobId).success) {
    throw new PeerdockError('ERR_INVALID_FLAG', `"${jobId}" is not a job id (64 hex digits, as "job run --json" prints): ${usage}`);
  }
  return { queue, jobId };
}
