import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../protocol/duration.js';
import { PeerdockError, toPeerdockError } from '../protocol/errors.js';
import { iceServersSchema, type IceServer } from '../protocol/signaling-events.js';
import { describeZodError } from '../protocol/zod-errors.js';

export const DEFAULT_SIGNAL_URL = 'http://127.0.0.1:8080';

/** The value of `PEERDOCK_<NAME>` when the flag was not given. */
export function fromEnv(name: string): string | undefined {
  const value = process.env[`PEERDOCK_${name}`];
  return value === undefined || value === '' ? undefined : value;
}

export function positiveInteger(value: string | number | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(number) || number < 1) {
    throw new PeerdockError('ERR_INVALID_FLAG', `--${flag} must be a whole number of at least 1, got "${value}"`);
  }
  return number;
}

/** A TCP port; 0 asks the system for a free one. */
export function portFlag(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new PeerdockError('ERR_INVALID_FLAG', `--port must be a whole number from 0 to 65535 (0 picks a free one), got "${value}"`);
  }
  return port;
}

export function durationFlag(value: string | undefined, flag: string, fallback: string): number {
  return parseDuration(value ?? fallback, `--${flag}`);
}

const sizeUnits: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** `512M`, `10GiB`, `1024` (bytes). */
export function sizeFlag(value: string | undefined, flag: string, fallback: string): number {
  const text = (value ?? fallback).trim().toLowerCase();
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(text);
  const unit = match ? sizeUnits[match[2]!] : undefined;
  if (!match || unit === undefined) {
    throw new PeerdockError('ERR_INVALID_FLAG', `--${flag} "${value}" is not a size: use bytes or units like 512M, 10G`);
  }
  return Math.floor(Number(match[1]) * unit);
}

export function iceServersFlag(value: string | undefined): IceServer[] | undefined {
  if (value === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    throw new PeerdockError('ERR_INVALID_FLAG', '--ice-servers must be JSON, e.g. \'[{"urls":"stun:stun.example.org:3478"}]\'');
  }
  const parsed = iceServersSchema.safeParse(json);
  if (!parsed.success) {
    throw new PeerdockError('ERR_INVALID_FLAG', `--ice-servers is not a list of {urls, username?, credential?}: ${describeZodError(parsed.error)}`);
  }
  return parsed.data;
}

export function signalUrlFlag(value: string | undefined): string {
  const url = value ?? fromEnv('SIGNAL') ?? DEFAULT_SIGNAL_URL;
  try {
    const parsed = new URL(url);
    if (!['http:', 'https:'].includes(parsed.protocol)) throw new Error('scheme');
  } catch {
    throw new PeerdockError('ERR_INVALID_FLAG', `--signal "${url}" is not an http(s) URL, e.g. ${DEFAULT_SIGNAL_URL}`);
  }
  return url;
}

export function defaultDataDir(...parts: string[]): string {
  return join(homedir(), '.peerdock', ...parts);
}

/** Prints `peerdock: ERR_CODE: message` and exits; flag errors exit 2, everything else 1. */
export function exitWithError(error: unknown): never {
  const problem = toPeerdockError(error);
  process.stderr.write(`peerdock: ${problem.code}: ${problem.message}\n`);
  if (process.env.DEBUG && problem.cause instanceof Error) process.stderr.write(`${problem.cause.stack}\n`);
  process.exit(problem.code === 'ERR_INVALID_FLAG' ? 2 : 1);
}

export function requireQueue(input: readonly string[], usage: string): string {
  const queue = input[0] ?? fromEnv('QUEUE');
  if (!queue) throw new PeerdockError('ERR_INVALID_FLAG', `the queue is missing: ${usage}`);
  if (input.length > 1) throw new PeerdockError('ERR_INVALID_FLAG', `unexpected argument "${input[1]}": ${usage}`);
  return queue;
}
