import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface RetentionPolicy {
  /** Stored results and cached inputs older than this go. */
  maxAgeMs: number;
  /** Then the oldest go until results and inputs together fit. */
  maxBytes: number;
}

interface Entry {
  path: string;
  bytes: number;
  modified: number;
}

async function sizeOf(path: string): Promise<number> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  const entries = await readdir(path).catch(() => []);
  let total = 0;
  for (const name of entries) total += await sizeOf(join(path, name));
  return total;
}

/**
 * Expires stored results (job folders with a result.json) and cached inputs by age, then by
 * total size, oldest first. Job ids and input hashes in `keep` (in use right now) are never touched.
 */
export async function expireStore(dataDir: string, policy: RetentionPolicy, keep: Set<string>, now = Date.now()): Promise<number> {
  const entries: Entry[] = [];
  for (const jobId of await readdir(join(dataDir, 'jobs')).catch(() => [])) {
    if (keep.has(jobId)) continue;
    const result = await stat(join(dataDir, 'jobs', jobId, 'result.json')).catch(() => undefined);
    if (!result) continue;
    const path = join(dataDir, 'jobs', jobId);
    entries.push({ path, bytes: await sizeOf(path), modified: result.mtimeMs });
  }
  const inputs = join(dataDir, 'inputs');
  for (const name of await readdir(inputs).catch(() => [])) {
    if (keep.has(name)) continue;
    const info = await stat(join(inputs, name)).catch(() => undefined);
    if (info?.isFile()) entries.push({ path: join(inputs, name), bytes: info.size, modified: info.mtimeMs });
  }
  for (const name of await readdir(join(inputs, '.partial')).catch(() => [])) {
    const info = await stat(join(inputs, '.partial', name)).catch(() => undefined);
    // A half-sent input is worth keeping for a resume, not forever.
    if (info && now - info.mtimeMs > policy.maxAgeMs) await rm(join(inputs, '.partial', name), { force: true });
  }
  entries.sort((a, b) => a.modified - b.modified);
  let total = entries.reduce((sum, entry) => sum + entry.bytes, 0);
  let removed = 0;
  for (const entry of entries) {
    if (now - entry.modified <= policy.maxAgeMs && total <= policy.maxBytes) continue;
    await rm(entry.path, { recursive: true, force: true });
    total -= entry.bytes;
    removed++;
  }
  return removed;
}
