import { lstat } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { PeerdockError, type ErrorCode } from '../protocol/errors.js';
import { relativePathProblem } from '../protocol/job.js';

/**
 * Joins a relative path (an input name, an output path) under `base`, refusing anything that
 * would land outside it, and any existing symlink on the way that could redirect the write.
 */
export async function confinedPath(base: string, name: string, code: ErrorCode): Promise<string> {
  const problem = relativePathProblem(name);
  if (problem) throw new PeerdockError(code, problem);
  const root = resolve(base);
  const target = resolve(root, name);
  const rel = relative(root, target);
  if (rel === '' || rel.startsWith('..') || rel.split(sep).includes('..')) {
    throw new PeerdockError(code, `"${name}" is outside its folder`);
  }
  for (let dir = dirname(target); dir !== root && dir.startsWith(root + sep); dir = dirname(dir)) {
    const info = await lstat(dir).catch(() => undefined);
    if (info?.isSymbolicLink()) throw new PeerdockError(code, `"${name}" goes through a symlink`);
  }
  const info = await lstat(target).catch(() => undefined);
  if (info?.isSymbolicLink()) throw new PeerdockError(code, `"${name}" is a symlink`);
  return target;
}
