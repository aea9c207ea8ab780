import type { JobEvent, RunJobResult } from '../client/run-job.js';
import { describeConnection } from '../peer/connection-report.js';
import { PeerdockError } from '../protocol/errors.js';
import { describeState } from '../protocol/job-state.js';
import type { ProgressLine } from './progress-line.js';

/** Logs to stdout/stderr as the container wrote them; everything else on the progress line. */
export function showEvent(event: JobEvent, progress: ProgressLine): void {
  switch (event.type) {
    case 'log':
      progress.clear();
      (event.stream === 'stdout' ? process.stdout : process.stderr).write(event.data);
      return;
    case 'state':
      return progress.note(`${describeState(event.state)}${event.position ? ` (position ${event.position})` : ''}`);
    case 'worker':
      return progress.note(`worker ${event.workerId}`);
    case 'connected':
      return progress.note(`connected to ${event.workerId}: ${event.connection ? describeConnection(event.connection) : 'connection type unknown'}`);
    case 'retry':
      return progress.note(`lost worker ${event.workerId} (${event.reason}); dispatching again (attempt ${event.attempt + 1})`);
    case 'pull': {
      const layers = event.layers ?? [];
      const done = layers.filter((layer) => layer.total > 0 && layer.current >= layer.total).length;
      return progress.bar(`pulling image${layers.length ? ` (${done}/${layers.length} layers)` : ''}: ${event.status}`, event.current, event.total);
    }
    case 'upload':
      return progress.bar('sending inputs', event.done, event.total);
    case 'download':
      return progress.bar(`receiving ${event.path}`, event.done, event.total);
  }
}

/** Exit codes: the container's own; 124 timed out; 125 could not run; 130 cancelled. */
export function exitCodeFor(result: RunJobResult | undefined, failure: PeerdockError | undefined): number {
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

/** The end of `job run` and `job attach`: error, summary or the JSON line; then exit. */
export function finishJob(
  jobId: string,
  result: RunJobResult | undefined,
  failure: PeerdockError | undefined,
  options: { json: boolean; outputs: string; progress: ProgressLine },
): never {
  const error = failure ?? (result?.error ? new PeerdockError(result.error.code, result.error.message) : undefined);
  if (error && !options.json) process.stderr.write(`peerdock: ${error.code}: ${error.message}\n`);
  if (result && !options.json) {
    options.progress.note(
      `job ${jobId.slice(0, 12)} ${result.state}${result.exitCode !== null ? ` (exit code ${result.exitCode})` : ''}${result.cached ? ', from the stored result' : ''}; ${result.outputs.length} output(s) in ${options.outputs}`,
    );
  }
  if (options.json) {
    const line = {
      jobId,
      state: result?.state ?? 'failed',
      exitCode: result?.exitCode ?? null,
      cached: result?.cached ?? false,
      outputs: result?.outputs ?? [],
      ...(result ? { workerId: result.workerId } : {}),
      ...(result?.connection ? { connection: { kind: result.connection.kind, local: result.connection.local.type, remote: result.connection.remote.type } } : {}),
      ...(error ? { error: error.toJSON() } : {}),
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  process.exit(exitCodeFor(result, failure));
}
