import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canTransition, describeState, finalJobStates, isFinalState, jobStates } from './job-state.js';

describe('job state machine', () => {
  test('final states lead nowhere', () => {
    for (const final of finalJobStates) {
      for (const next of jobStates) assert.equal(canTransition(final, next), false, `${final} → ${next}`);
      assert.equal(isFinalState(final), true);
    }
  });

  test('the happy path is allowed step by step', () => {
    const path = ['dispatching', 'sending-inputs', 'queued', 'pulling', 'running', 'finished'] as const;
    for (let i = 1; i < path.length; i++) assert.equal(canTransition(path[i - 1]!, path[i]!), true, `${path[i - 1]} → ${path[i]}`);
  });

  test('a job can be cancelled or fail from every live state, and time out only once started', () => {
    for (const state of jobStates.filter((s) => !isFinalState(s))) {
      assert.equal(canTransition(state, 'cancelled'), true, `${state} → cancelled`);
      assert.equal(canTransition(state, 'failed'), true, `${state} → failed`);
      assert.equal(canTransition(state, 'timed-out'), state === 'pulling' || state === 'running', `${state} → timed-out`);
    }
  });

  test('a lost worker sends any live job back to dispatching, never backwards otherwise', () => {
    assert.equal(canTransition('running', 'dispatching'), true);
    assert.equal(canTransition('running', 'queued'), false);
    assert.equal(canTransition('queued', 'sending-inputs'), false);
    assert.equal(canTransition('finished', 'dispatching'), false);
  });

  test('every state has a label for people', () => {
    for (const state of jobStates) assert.ok(describeState(state).length > 0);
    assert.equal(describeState('queued'), 'queued on worker');
  });
});
