import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { expireStore } from './housekeeping.js';

const DAY = 24 * 3600_000;
const hex = (char: string) => char.repeat(64);

describe('expiring stored results and cached inputs', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  /** A data folder with jobs and inputs of the given ages (days) and sizes (bytes). */
  async function store(jobs: Record<string, { days: number; bytes: number; result?: boolean }>, inputs: Record<string, { days: number; bytes: number }>) {
    const dir = await mkdtemp(join(tmpdir(), 'peerdock-housekeeping-'));
    dirs.push(dir);
    const now = Date.now();
    for (const [id, job] of Object.entries(jobs)) {
      await mkdir(join(dir, 'jobs', id, 'outputs'), { recursive: true });
      await writeFile(join(dir, 'jobs', id, 'outputs', 'out.bin'), Buffer.alloc(job.bytes));
      if (job.result !== false) {
        const result = join(dir, 'jobs', id, 'result.json');
        await writeFile(result, '{}');
        const when = new Date(now - job.days * DAY);
        await utimes(result, when, when);
      }
    }
    await mkdir(join(dir, 'inputs', '.partial'), { recursive: true });
    for (const [sha, input] of Object.entries(inputs)) {
      const path = join(dir, 'inputs', sha);
      await writeFile(path, Buffer.alloc(input.bytes));
      const when = new Date(now - input.days * DAY);
      await utimes(path, when, when);
    }
    return dir;
  }

  test('results and inputs past the age go; younger ones and jobs without a result stay', async () => {
    const dir = await store(
      { [hex('a')]: { days: 10, bytes: 10 }, [hex('b')]: { days: 1, bytes: 10 }, [hex('c')]: { days: 30, bytes: 10, result: false } },
      { [hex('1')]: { days: 10, bytes: 10 }, [hex('2')]: { days: 1, bytes: 10 } },
    );
    const removed = await expireStore(dir, { maxAgeMs: 7 * DAY, maxBytes: 1e9 }, new Set());
    assert.equal(removed, 2);
    assert.deepEqual((await readdir(join(dir, 'jobs'))).sort(), [hex('b'), hex('c')]);
    assert.deepEqual((await readdir(join(dir, 'inputs'))).filter((name) => name !== '.partial'), [hex('2')]);
  });

  test('over the size budget the oldest go first, and what is in use is never touched', async () => {
    const dir = await store(
      { [hex('a')]: { days: 3, bytes: 400 }, [hex('b')]: { days: 2, bytes: 400 }, [hex('c')]: { days: 1, bytes: 400 } },
      { [hex('1')]: { days: 4, bytes: 400 } },
    );
    // Budget for one entry; the oldest of all, an input, is in use by a running job: it stays.
    await expireStore(dir, { maxAgeMs: 7 * DAY, maxBytes: 500 }, new Set([hex('1')]));
    assert.deepEqual((await readdir(join(dir, 'jobs'))).sort(), [hex('c')]);
    assert.deepEqual((await readdir(join(dir, 'inputs'))).filter((name) => name !== '.partial'), [hex('1')]);
  });
});
