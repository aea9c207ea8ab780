import { z } from 'zod';

/**
 * The one state machine of a job, shared by worker, CLI and frame. A job moves forward only; the
 * final states are where it ends exactly once.
 */
export const jobStates = [
  'dispatching',
  'sending-inputs',
  'queued',
  'pulling',
  'running',
  'finished',
  'failed',
  'cancelled',
  'timed-out',
] as const;
export const jobStateSchema = z.enum(jobStates);
export type JobState = z.infer<typeof jobStateSchema>;

export const finalJobStates = ['finished', 'failed', 'cancelled', 'timed-out'] as const satisfies readonly JobState[];
export type FinalJobState = (typeof finalJobStates)[number];
export const finalJobStateSchema = z.enum(finalJobStates);

const transitions: Record<JobState, readonly JobState[]> = {
  dispatching: ['dispatching', 'sending-inputs', 'queued', 'failed', 'cancelled'],
  'sending-inputs': ['dispatching', 'queued', 'failed', 'cancelled'],
  queued: ['dispatching', 'pulling', 'running', 'failed', 'cancelled'],
  pulling: ['dispatching', 'running', 'failed', 'cancelled', 'timed-out'],
  running: ['dispatching', 'finished', 'failed', 'cancelled', 'timed-out'],
  finished: [],
  failed: [],
  cancelled: [],
  'timed-out': [],
};

export function isFinalState(state: JobState): state is FinalJobState {
  return (finalJobStates as readonly JobState[]).includes(state);
}

export function canTransition(from: JobState, to: JobState): boolean {
  return transitions[from].includes(to);
}

const labels: Record<JobState, string> = {
  dispatching: 'finding a worker',
  'sending-inputs': 'sending inputs',
  queued: 'queued on worker',
  pulling: 'pulling image',
  running: 'running',
  finished: 'finished',
  failed: 'failed',
  cancelled: 'cancelled',
  'timed-out': 'timed out',
};

export function describeState(state: JobState): string {
  return labels[state];
}
