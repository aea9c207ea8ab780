/**
 * Finished jobs kept in the browser (IndexedDB) by job id: result, logs and output Blobs. A job
 * with the same id shows its outputs at once, even after a reload with no worker online.
 */
import { createStore, del, get, keys, set, type UseStore } from 'idb-keyval';
import type { JobResult } from '../protocol/messages.js';

export interface CachedLog {
  stream: 'stdout' | 'stderr';
  data: string;
}

export interface CachedOutput {
  path: string;
  size: number;
  sha256: string;
  blob: Blob;
}

export interface CachedJob {
  jobId: string;
  result: JobResult;
  logs: CachedLog[];
  /** True when logs were cut to fit the cache. */
  logsTruncated: boolean;
  outputs: CachedOutput[];
  workerId?: string;
  savedAt: number;
}

/** Logs kept per job; the rest is dropped from the cache (not from the live view). */
export const MAX_CACHED_LOG_CHARS = 2 * 1024 * 1024;

let store: UseStore | undefined;
function jobs(): UseStore {
  store ??= createStore('peerdock', 'jobs');
  return store;
}

export async function loadCachedJob(jobId: string): Promise<CachedJob | undefined> {
  try {
    return (await get<CachedJob>(jobId, jobs())) ?? undefined;
  } catch {
    return undefined; // private mode or storage disabled: no cache, no failure
  }
}

export async function saveCachedJob(job: CachedJob): Promise<void> {
  try {
    await set(job.jobId, job, jobs());
  } catch {
    // Quota or storage disabled: the job still ran, only the cache is missing.
  }
}

export async function deleteCachedJob(jobId: string): Promise<void> {
  await del(jobId, jobs()).catch(() => {});
}

export async function cachedJobIds(): Promise<string[]> {
  return ((await keys(jobs()).catch(() => [])) as IDBValidKey[]).map(String);
}

/**
 * An output of any cached job with this content, so a new job's identical output need not be
 * sent again. Looks through the cache (it holds finished jobs of this browser only).
 */
export async function findCachedOutput(sha256: string): Promise<Blob | undefined> {
  for (const jobId of await cachedJobIds()) {
    const found = (await loadCachedJob(jobId))?.outputs.find((output) => output.sha256 === sha256);
    if (found) return found.blob;
  }
  return undefined;
}

/** Cuts logs to the cache's budget, keeping the end (where failures are). */
export function trimLogs(logs: CachedLog[]): { logs: CachedLog[]; truncated: boolean } {
  let total = 0;
  const kept: CachedLog[] = [];
  for (let i = logs.length - 1; i >= 0; i--) {
    total += logs[i]!.data.length;
    if (total > MAX_CACHED_LOG_CHARS) return { logs: kept.reverse(), truncated: true };
    kept.push(logs[i]!);
  }
  return { logs: kept.reverse(), truncated: false };
}
