import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { confinedPath } from '../files/safe-path.js';
import { fileSink, openFileSource, sha256OfFile } from '../files/node-files.js';
import { PeerdockError } from '../protocol/errors.js';
import { relativePathProblem, type FileRef } from '../protocol/job.js';
import type { ByteSink, ByteSource } from '../protocol/link.js';
import type { OutputFile } from '../protocol/messages.js';

export interface InputArgument {
  /** The file on this machine. */
  path: string;
  /** Its name under /inputs. */
  name: string;
}

/** `FILE` or `FILE=NAME`, as given to `--input`. */
export function parseInputArgument(argument: string): InputArgument {
  const split = argument.lastIndexOf('=');
  const path = split > 0 ? argument.slice(0, split) : argument;
  const name = split > 0 ? argument.slice(split + 1) : basename(argument);
  const problem = relativePathProblem(name);
  if (problem) throw new PeerdockError('ERR_INPUT_NAME', `--input ${argument}: the name under /inputs is invalid: ${problem}`);
  return { path: resolve(path), name };
}

export interface PreparedInputs {
  refs: Record<string, FileRef>;
  sources: Map<string, ByteSource>;
  close(): Promise<void>;
}

/** Hashes every input file (streaming) and opens it for reading on demand. */
export async function prepareInputs(inputs: InputArgument[]): Promise<PreparedInputs> {
  const refs: Record<string, FileRef> = {};
  const sources = new Map<string, ByteSource & { close(): Promise<void> }>();
  for (const input of inputs) {
    if (refs[input.name]) throw new PeerdockError('ERR_INPUT_NAME', `two inputs are named "${input.name}": give one another name with FILE=NAME`);
    const info = await stat(input.path).catch(() => undefined);
    if (!info?.isFile()) throw new PeerdockError('ERR_INPUT_MISSING', `input file ${input.path} does not exist or is not a file`);
    const ref = await sha256OfFile(input.path);
    refs[input.name] = ref;
    if (!sources.has(ref.sha256)) sources.set(ref.sha256, await openFileSource(input.path));
  }
  return {
    refs,
    sources,
    close: async () => {
      await Promise.all([...sources.values()].map((source) => source.close()));
    },
  };
}

/** Writes outputs below `dir`, nested paths kept; a file already there with the same hash is kept. */
export function outputsDirectory(dir: string): {
  openOutput: (file: OutputFile) => Promise<ByteSink>;
  wantOutput: (file: OutputFile) => Promise<boolean>;
} {
  const root = resolve(dir);
  return {
    async openOutput(file) {
      return fileSink(await confinedPath(root, file.path, 'ERR_OUTPUT_PATH'), { expectSha256: file.sha256 });
    },
    async wantOutput(file) {
      const target = await confinedPath(root, file.path, 'ERR_OUTPUT_PATH');
      const info = await stat(target).catch(() => undefined);
      if (!info?.isFile() || info.size !== file.size) return true;
      return (await sha256OfFile(target)).sha256 !== file.sha256;
    },
  };
}
