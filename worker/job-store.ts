import { createReadStream } from 'node:fs';
import { appendFile, copyFile, link, lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { confinedPath } from '../files/safe-path.js';
import { fileExists, fileSize, resumableFileSink, sha256OfFile } from '../files/node-files.js';
import { jobDefinitionSchema, type JobDefinition } from '../protocol/job.js';
import type { ByteSink } from '../protocol/link.js';
import { jobResultSchema, type JobResult, type OutputFile } from '../protocol/messages.js';

export const logRecordSchema = z.strictObject({ stream: z.enum(['stdout', 'stderr']), data: z.string() });
export type LogRecord = z.infer<typeof logRecordSchema>;

export const jobMetaSchema = z.strictObject({
  jobId: z.string(),
  definition: jobDefinitionSchema,
  deadlineSeconds: z.number().int().positive(),
  containerId: z.string().optional(),
});
export type JobMeta = z.infer<typeof jobMetaSchema>;

/**
 * The worker's disk:
 *   <dataDir>/inputs/<sha256>          content cache of input files
 *   <dataDir>/jobs/<jobId>/inputs/     the job's inputs by name (hard links into the cache)
 *   <dataDir>/jobs/<jobId>/outputs/    what the container left in /outputs
 *   <dataDir>/jobs/<jobId>/job.json    definition, deadline and container of a started job
 *   <dataDir>/jobs/<jobId>/logs.jsonl  stdout/stderr as they came
 *   <dataDir>/jobs/<jobId>/result.json written last: its presence means the job is stored
 */
export class JobStore {
  constructor(readonly dataDir: string) {}

  async init(): Promise<void> {
    await mkdir(join(this.dataDir, 'inputs'), { recursive: true });
    await mkdir(join(this.dataDir, 'jobs'), { recursive: true });
  }

  private inputPath(sha256: string): string {
    return join(this.dataDir, 'inputs', sha256);
  }

  jobDir(jobId: string): string {
    return join(this.dataDir, 'jobs', jobId);
  }

  hasInput(sha256: string): Promise<boolean> {
    return fileExists(this.inputPath(sha256));
  }

  private partialInputPath(sha256: string): string {
    return join(this.dataDir, 'inputs', '.partial', sha256);
  }

  /** How much of an input an interrupted transfer left on disk: where the next one resumes. */
  partialInputSize(sha256: string): Promise<number> {
    return fileSize(this.partialInputPath(sha256));
  }

  /** Receives an input into the cache; it appears there only if its content matches the hash. */
  inputSink(sha256: string, offset: number): ByteSink {
    return resumableFileSink(this.inputPath(sha256), this.partialInputPath(sha256), sha256, offset);
  }

  /** A fresh job folder: inputs placed by name, an empty outputs folder. */
  async prepareJob(jobId: string, definition: JobDefinition): Promise<{ inputsDir: string; outputsDir: string }> {
    const dir = this.jobDir(jobId);
    await rm(dir, { recursive: true, force: true });
    const inputsDir = join(dir, 'inputs');
    const outputsDir = join(dir, 'outputs');
    await mkdir(inputsDir, { recursive: true });
    await mkdir(outputsDir, { recursive: true });
    for (const [name, ref] of Object.entries(definition.inputs)) {
      const target = await confinedPath(inputsDir, name, 'ERR_INPUT_NAME');
      await mkdir(join(target, '..'), { recursive: true });
      // A hard link costs nothing; /inputs is mounted read-only, so the cache cannot be altered.
      await link(this.inputPath(ref.sha256), target).catch(() => copyFile(this.inputPath(ref.sha256), target));
    }
    return { inputsDir, outputsDir };
  }

  /** What a restarted worker needs to adopt a job whose container outlived the old process. */
  async writeJobMeta(meta: JobMeta): Promise<void> {
    const path = join(this.jobDir(meta.jobId), 'job.json');
    await writeFile(`${path}.tmp`, JSON.stringify(meta, null, 2));
    await rename(`${path}.tmp`, path);
  }

  async readJobMeta(jobId: string): Promise<JobMeta | undefined> {
    const text = await readFile(join(this.jobDir(jobId), 'job.json'), 'utf8').catch(() => undefined);
    const parsed = jobMetaSchema.safeParse(text === undefined ? undefined : parseJsonOrUndefined(text));
    return parsed.success ? parsed.data : undefined;
  }

  async jobIds(): Promise<string[]> {
    const entries = await readdir(join(this.dataDir, 'jobs'), { withFileTypes: true }).catch(() => []);
    return entries.filter((entry) => entry.isDirectory() && /^[0-9a-f]{64}$/.test(entry.name)).map((entry) => entry.name);
  }

  async removeJob(jobId: string): Promise<void> {
    await rm(this.jobDir(jobId), { recursive: true, force: true });
  }

  /** Replaces the stored logs, e.g. with the engine's complete copy for an adopted job. */
  async replaceLogs(jobId: string, records: LogRecord[]): Promise<void> {
    const path = join(this.jobDir(jobId), 'logs.jsonl');
    await writeFile(`${path}.tmp`, records.map((record) => `${JSON.stringify(record)}\n`).join(''));
    await rename(`${path}.tmp`, path);
  }

  async appendLog(jobId: string, record: LogRecord): Promise<void> {
    await appendFile(join(this.jobDir(jobId), 'logs.jsonl'), `${JSON.stringify(record)}\n`);
  }

  async *readLogs(jobId: string): AsyncGenerator<LogRecord> {
    const path = join(this.jobDir(jobId), 'logs.jsonl');
    if (!(await fileExists(path))) return;
    for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
      const parsed = logRecordSchema.safeParse(parseJsonOrUndefined(line));
      if (parsed.success) yield parsed.data;
    }
  }

  /**
   * Lists the regular files under the job's outputs folder with their hashes. Symlinks and other
   * special files are refused: they are reported, never followed.
   */
  async collectOutputs(jobId: string): Promise<{ files: OutputFile[]; refused: string[] }> {
    const root = join(this.jobDir(jobId), 'outputs');
    const files: OutputFile[] = [];
    const refused: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      entries.sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const entry of entries) {
        const full = join(dir, entry.name);
        const path = relative(root, full).split(sep).join('/');
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile()) files.push({ path, ...(await sha256OfFile(full)) });
        else refused.push(path);
      }
    };
    await walk(root);
    return { files, refused };
  }

  async outputFile(jobId: string, path: string): Promise<string> {
    const full = await confinedPath(join(this.jobDir(jobId), 'outputs'), path, 'ERR_OUTPUT_PATH');
    const info = await lstat(full);
    if (!info.isFile()) throw new Error(`${path} is not a regular file`);
    return full;
  }

  async readResult(jobId: string): Promise<JobResult | undefined> {
    const text = await readFile(join(this.jobDir(jobId), 'result.json'), 'utf8').catch(() => undefined);
    if (!text) return undefined;
    const parsed = jobResultSchema.safeParse(parseJsonOrUndefined(text));
    return parsed.success ? parsed.data : undefined;
  }

  async writeResult(result: JobResult): Promise<void> {
    const path = join(this.jobDir(result.jobId), 'result.json');
    await writeFile(`${path}.tmp`, JSON.stringify(result, null, 2));
    await rename(`${path}.tmp`, path);
  }
}

/** A torn write (the worker died mid-line) must not make a stored job unreadable. */
function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
