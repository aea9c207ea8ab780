import meow from 'meow';
import { attachJob } from '../client/run-job.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { PeerdockError } from '../protocol/errors.js';
import { durationFlag, fromEnv, signalUrlFlag } from './common.js';
import { queueAndJobId } from './job-attach-command.js';

const help = `
  Usage
    $ peerdock job cancel <queue> <jobId> [options]

  Cancels a job on whichever worker of the queue holds it: a waiting job never starts, a running
  container is stopped within a couple of seconds. Its logs so far are kept. A job that has
  already ended is left as it is.

  Options
    --signal <url>     Signaling server (default http://127.0.0.1:8080)      PEERDOCK_SIGNAL
    --wait <d>         How long to wait for a worker to be online (default 30s) PEERDOCK_WAIT
    --json             Print {"jobId","state"} at the end
`;

export async function run(argv: string[]): Promise<void> {
  const cli = meow(help, {
    importMeta: import.meta,
    description: false,
    argv,
    allowUnknownFlags: false,
    flags: { signal: { type: 'string' }, wait: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const { queue, jobId } = queueAndJobId(cli.input, 'cancel');
  const signaling = await SignalingClient.connect({ url: signalUrlFlag(cli.flags.signal), queue, role: 'client' });
  const cancelled = new AbortController();
  cancelled.abort();
  try {
    // Attach with the cancel already requested: the worker that holds the job stops it and
    // answers with its final state; outputs are not fetched.
    const result = await attachJob({
      signaling,
      peer: { wrtc: nodeWrtc() },
      jobId,
      openOutput: () => {
        throw new PeerdockError('ERR_BAD_MESSAGE', 'cancel fetches no outputs');
      },
      wantOutput: () => false,
      waitForWorkerMs: durationFlag(cli.flags.wait ?? fromEnv('WAIT'), 'wait', '30s') * 1000,
      signal: cancelled.signal,
    });
    if (cli.flags.json) process.stdout.write(`${JSON.stringify({ jobId, state: result.state })}\n`);
    else if (result.state === 'cancelled') process.stdout.write(`job ${jobId.slice(0, 12)} cancelled\n`);
    else process.stdout.write(`job ${jobId.slice(0, 12)} had already ended: ${result.state}\n`);
  } finally {
    signaling.close();
  }
}
