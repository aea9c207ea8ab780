import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatDuration, parseDuration } from './duration.js';
import { PeerdockError } from './errors.js';

describe('parseDuration', () => {
  test('reads seconds and units into whole seconds', () => {
    const cases: Array<[string | number, number]> = [
      ['90', 90],
      [90, 90],
      ['30s', 30],
      ['10m', 600],
      ['2h', 7200],
      ['1d', 86400],
      ['1h30m', 5400],
      ['1h30m15s', 5415],
      ['1.5h', 5400],
      ['  10m ', 600],
      ['1500ms', 2],
      ['2.5', 3],
      [0.2, 1],
      ['1ms', 1],
    ];
    for (const [input, seconds] of cases) assert.equal(parseDuration(input), seconds, `parseDuration(${JSON.stringify(input)})`);
  });

  test('refuses what is not a positive duration, with ERR_INVALID_FLAG naming the value', () => {
    for (const input of ['', 'abc', '10x', '10m5', '1h 30m', 'm', '-5', '-5s', '0', '0s', '1e3', '10 m']) {
      assert.throws(
        () => parseDuration(input, '--timeout'),
        (error: unknown) =>
          error instanceof PeerdockError && error.code === 'ERR_INVALID_FLAG' && error.message.includes('--timeout'),
        JSON.stringify(input),
      );
    }
    for (const input of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => parseDuration(input),
        (error: unknown) => error instanceof PeerdockError && error.code === 'ERR_INVALID_FLAG',
        String(input),
      );
    }
  });
});

describe('formatDuration', () => {
  test('picks a readable unit', () => {
    assert.equal(formatDuration(0), '0ms');
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(1500), '1.5s');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(3_600_000 + 60_000), '1h1m');
  });
});
