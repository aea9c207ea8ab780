import { z } from 'zod';
import { canonicalJson } from './canonical-json.js';
import { parseDuration } from './duration.js';
import { sha256Hex } from './encoding.js';
import { PeerdockError } from './errors.js';
import { splitShellWords } from './shell-words.js';
import { describeZodError } from './zod-errors.js';

export const sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');
export const jobIdSchema = sha256HexSchema;

/**
 * A relative path below `/inputs` or `/outputs`: POSIX separators, no empty, `.` or `..` segment,
 * no control characters. Checked here for a clear message and again on the worker's disk.
 */
export const relativeFilePathSchema = z
  .string()
  .min(1)
  .max(1024)
  .refine((path) => relativePathProblem(path) === undefined, {
    error: (issue) => relativePathProblem(String(issue.input)) ?? 'invalid path',
  });

export function relativePathProblem(path: string): string | undefined {
  if (path.startsWith('/')) return `"${path}" is absolute; give a name relative to the folder`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return `${JSON.stringify(path)} contains a control character`;
  if (path.includes('\\')) return `"${path}" contains a backslash; use / between folders`;
  for (const segment of path.split('/')) {
    if (segment === '..') return `"${path}" climbs out of its folder with ..`;
    if (segment === '' || segment === '.') return `"${path}" has an empty or . segment`;
    if (segment.length > 255) return `"${path}" has a name longer than 255 characters`;
  }
  return undefined;
}

export const fileRefSchema = z.strictObject({
  sha256: sha256HexSchema,
  size: z.number().int().nonnegative(),
});
export type FileRef = z.infer<typeof fileRefSchema>;

const imageSchema = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._\-/:@+]*$/, 'is not a Docker image reference (e.g. alpine:3.20)');
const argvSchema = z.array(z.string().max(128 * 1024)).max(4096);
const envKeySchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not an environment variable name');
const workdirSchema = z.string().startsWith('/', 'must be an absolute path inside the container').max(4096);

/** The normalized job definition: what travels to the worker and what the job id is computed from. */
export const jobDefinitionSchema = z.strictObject({
  image: imageSchema,
  command: argvSchema.optional(),
  entrypoint: argvSchema.optional(),
  workdir: workdirSchema.optional(),
  env: z.record(envKeySchema, z.string().max(128 * 1024)).optional(),
  /** Seconds; the worker caps it with its own `--max-job-duration`. */
  maxDuration: z.number().int().positive().optional(),
  inputs: z.record(relativeFilePathSchema, fileRefSchema),
});
export type JobDefinition = z.infer<typeof jobDefinitionSchema>;

/**
 * What a person writes (CLI flags, URL hash, frame editor): commands as a shell line or argv,
 * durations as `10m`. Unknown keys are ignored here so links from container.mtfm.io still open.
 */
export const jobSpecSchema = z.object({
  image: imageSchema,
  command: z.union([z.string(), argvSchema]).optional(),
  entrypoint: z.union([z.string(), argvSchema]).optional(),
  workdir: z.union([workdirSchema, z.literal('')]).optional(),
  env: z.record(envKeySchema, z.string()).optional(),
  maxDuration: z.union([z.string(), z.number()]).optional(),
});
export type JobSpec = z.input<typeof jobSpecSchema>;

/** Turns a user's job spec plus the refs of its input files into the canonical definition. */
export function buildJobDefinition(spec: JobSpec, inputs: Record<string, FileRef>): JobDefinition {
  const parsed = jobSpecSchema.safeParse(spec);
  if (!parsed.success) throw invalidJob(parsed.error);
  const { image, command, entrypoint, workdir, env, maxDuration } = parsed.data;
  const definition = {
    image,
    command: toArgv(command),
    entrypoint: toArgv(entrypoint),
    workdir: workdir || undefined,
    env: env && Object.keys(env).length > 0 ? env : undefined,
    maxDuration: maxDuration === undefined || maxDuration === '' ? undefined : jobDuration(maxDuration),
    inputs,
  };
  return parseJobDefinition(definition);
}

export function parseJobDefinition(value: unknown): JobDefinition {
  const parsed = jobDefinitionSchema.safeParse(value);
  if (!parsed.success) throw invalidJob(parsed.error);
  return parsed.data;
}

/** `jobId = sha256(canonical JSON of the definition)`; inputs are already `{sha256, size}`. */
export async function computeJobId(definition: JobDefinition): Promise<string> {
  return sha256Hex(canonicalJson(definition));
}

/** A bad duration in a job is a bad job, not a bad flag. */
function jobDuration(value: string | number): number {
  try {
    return parseDuration(value, 'maxDuration');
  } catch (error) {
    throw new PeerdockError('ERR_INVALID_JOB', (error as Error).message);
  }
}

function toArgv(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const argv = typeof value === 'string' ? splitShellWords(value) : value;
  return argv.length > 0 ? argv : undefined;
}

export function invalidJob(error: z.ZodError): PeerdockError {
  return new PeerdockError('ERR_INVALID_JOB', `the job definition is not valid: ${describeZodError(error)}`);
}
