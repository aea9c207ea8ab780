import { mkdir, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { confinedPath } from '../files/safe-path.js';
import { fileSize, openFileSource, resumableFileSink, sha256OfFile } from '../files/node-files.js';
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

/** Where a half-received output waits, inside the outputs folder: by content, so any run resumes it. */
export const PARTIAL_OUTPUTS_DIR = '.peerdock-partial';

/**
 * Writes outputs below `dir`, nested paths kept. A file already there with the same hash is
 * kept; one whose transfer was cut short resumes from the bytes already received.
 */
export function outputsDirectory(dir: string): {
  openOutput: (file: OutputFile, offset: number) => Promise<ByteSink>;
  wantOutput: (file: OutputFile) => Promise<boolean | { offset: number }>;
} {
  const root = resolve(dir);
  const partialPath = (file: OutputFile) => join(root, PARTIAL_OUTPUTS_DIR, file.sha256);
  return {
    async openOutput(file, offset) {
      const target = await confinedPath(root, file.path, 'ERR_OUTPUT_PATH');
      await mkdir(dirname(target), { recursive: true });
      const sink = resumableFileSink(target, partialPath(file), file.sha256, offset);
      return {
        write: (chunk) => sink.write(chunk),
        abort: (error) => sink.abort(error),
        async finish() {
          const sha256 = await sink.finish();
          await rmdir(join(root, PARTIAL_OUTPUTS_DIR)).catch(() => {}); // only once empty
          return sha256;
        },
      };
    },
    async wantOutput(file) {
      const target = await confinedPath(root, file.path, 'ERR_OUTPUT_PATH');
      const info = await stat(target).catch(() => undefined);
      if (info?.isFile() && info.size === file.size && (await sha256OfFile(target)).sha256 === file.sha256) return false;
      const partial = await fileSize(partialPath(file));
      return partial > 0 && partial < file.size ? { offset: partial } : true;
    },
  };
}
