import { z } from 'zod';

/**
 * URL hash parameters in the encoding of @metapages/hash-query (what container.mtfm.io links
 * use). The hash reads `#?key=value&key=value` (anything before the `?` is kept as is):
 * - a JSON value is `base64(encodeURIComponent(JSON.stringify(value)))` with sorted keys, written
 *   unescaped (base64's `+`, `/` and `=` are legal in a fragment); a reader also accepts it
 *   percent-encoded, as the library does;
 * - a string is written as is (we percent-encode the characters that would break the hash:
 *   for ordinary queue names that is the identity);
 * - a boolean is `true`, or absent.
 */

/** The library's value encoding; strings stay readable, everything else is base64 JSON. */
export function encodeHashValue(value: unknown): string {
  if (typeof value === 'string') return encodeURIComponent(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return btoa(encodeURIComponent(stableStringify(value)));
}

/** Reads a base64 JSON value the way @metapages/hash-query's blobFromBase64String does. */
export function decodeHashJson(raw: string): unknown {
  try {
    return JSON.parse(decodeURIComponent(atob(raw)));
  } catch {
    return JSON.parse(decodeURIComponent(atob(decodeURIComponent(raw))));
  }
}

/** A string value: the library writes it raw; percent-escapes are undone when valid. */
export function decodeHashString(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Splits `#pre?key=value&…` into the part before `?` and the raw (still encoded) values. */
export function splitHash(hash: string): { pre: string; params: Record<string, string> } {
  let text = hash;
  while (text.startsWith('#')) text = text.slice(1);
  const question = text.indexOf('?');
  if (question === -1) return { pre: text, params: {} };
  const params: Record<string, string> = {};
  for (const part of text.slice(question + 1).split('&')) {
    if (!part) continue;
    const equals = part.indexOf('=');
    if (equals === -1) params[part] = '';
    else params[part.slice(0, equals)] = part.slice(equals + 1);
  }
  return { pre: text.slice(0, question), params };
}

/** Joins raw values back into a hash (no leading `#`), keys sorted as the library does. */
export function joinHash(pre: string, params: Record<string, string | undefined>): string {
  const keys = Object.keys(params)
    .filter((key) => params[key] !== undefined)
    .sort();
  const query = keys.map((key) => `${key}=${params[key]}`).join('&');
  return `${pre}${query ? `?${query}` : ''}`;
}

function stableStringify(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object' && (value as object).constructor === Object) {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) sorted[key] = sortKeys(item);
    }
    return sorted;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// The frame's parameters, as container.mtfm.io names them.

const argvOrLine = z.union([z.string(), z.array(z.string())]);

/**
 * The `job` parameter: the definition without inputs. Loose on purpose: a link made for
 * container.mtfm.io may carry keys we do not use (gpu, build, …); those are reported, not fatal.
 */
export const hashJobSchema = z.looseObject({
  image: z.string().optional(),
  command: argvOrLine.optional(),
  entrypoint: argvOrLine.optional(),
  workdir: z.string().optional(),
  env: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).optional(),
  maxDuration: z.union([z.string(), z.number()]).optional(),
});
export type HashJob = z.output<typeof hashJobSchema>;

/** The `inputs` parameter: file name → text content. */
export const hashInputsSchema = z.record(z.string(), z.string());

export const KNOWN_JOB_KEYS = ['image', 'command', 'entrypoint', 'workdir', 'env', 'maxDuration'] as const;
export const KNOWN_HASH_PARAMS = ['queue', 'job', 'inputs', 'autostart'] as const;
/** Parameters container.mtfm.io (or metapage) sets that mean nothing here but are harmless. */
const TOLERATED_HASH_PARAMS = new Set(['debug', 'definition', 'config', 'control', 'ignoreQueueOverride', 'nocache', 'mfdebug']);

export interface FrameHashParams {
  queue?: string;
  job?: HashJob;
  inputs?: Record<string, string>;
  autostart: boolean;
}

export interface ParsedFrameHash extends FrameHashParams {
  /** Problems that made a parameter unusable: shown to the user, the parameter is ignored. */
  errors: string[];
  /** Things ignored on purpose (unknown parameters or job keys): shown, less loudly. */
  notices: string[];
}

/** Reads the frame's parameters from a location hash; never throws. */
export function parseFrameHash(hash: string): ParsedFrameHash {
  const { params } = splitHash(hash);
  const result: ParsedFrameHash = { autostart: false, errors: [], notices: [] };

  if (params.queue !== undefined) {
    const queue = decodeHashString(params.queue).trim();
    if (queue) result.queue = queue;
  }

  if (params.job !== undefined && params.job !== '') {
    const value = readJson(params.job, 'job', result.errors);
    if (value !== undefined) {
      const parsed = hashJobSchema.safeParse(value);
      if (!parsed.success) {
        result.errors.push(`The "job" parameter is not a job definition: ${describeIssues(parsed.error)}.`);
      } else {
        result.job = parsed.data;
        const unknown = Object.keys(parsed.data).filter((key) => !(KNOWN_JOB_KEYS as readonly string[]).includes(key));
        if (unknown.length > 0) result.notices.push(`Ignored job settings peerdock does not support: ${unknown.join(', ')}.`);
      }
    }
  }

  if (params.inputs !== undefined && params.inputs !== '') {
    const value = readJson(params.inputs, 'inputs', result.errors);
    if (value !== undefined) {
      const parsed = hashInputsSchema.safeParse(value);
      if (!parsed.success) result.errors.push(`The "inputs" parameter must map file names to text: ${describeIssues(parsed.error)}.`);
      else result.inputs = parsed.data;
    }
  }

  if (params.autostart !== undefined) {
    const value = decodeHashString(params.autostart).toLowerCase();
    if (['true', '1', ''].includes(value)) result.autostart = true;
    else if (!['false', '0'].includes(value)) result.errors.push(`The "autostart" parameter must be true or false, not "${value}".`);
  }

  const unknown = Object.keys(params).filter(
    (key) => !(KNOWN_HASH_PARAMS as readonly string[]).includes(key) && !TOLERATED_HASH_PARAMS.has(key),
  );
  if (unknown.length > 0) result.notices.push(`Ignored unknown URL parameter${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`);
  return result;
}

/**
 * Writes the frame's parameters into a hash (no leading `#`), keeping what was before the `?`
 * and any parameter this frame does not own.
 */
export function formatFrameHash(current: string, next: FrameHashParams): string {
  const { pre, params } = splitHash(current);
  const job = next.job && Object.keys(next.job).length > 0 ? next.job : undefined;
  const inputs = next.inputs && Object.keys(next.inputs).length > 0 ? next.inputs : undefined;
  return joinHash(pre, {
    ...params,
    queue: next.queue ? encodeHashValue(next.queue) : undefined,
    job: job ? encodeHashValue(job) : undefined,
    inputs: inputs ? encodeHashValue(inputs) : undefined,
    autostart: next.autostart ? 'true' : undefined,
  });
}

function readJson(raw: string, name: string, errors: string[]): unknown {
  try {
    return decodeHashJson(raw);
  } catch {
    errors.push(
      `The "${name}" parameter could not be read: it must be base64 of URI-encoded JSON, as container.mtfm.io links write it.`,
    );
    return undefined;
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'value'}: ${issue.message}`).join('; ');
}
