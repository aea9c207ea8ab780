import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { PeerdockError } from '../protocol/errors.js';
import type { ByteSink, ByteSource } from '../protocol/link.js';

/** Reads a file on disk chunk by chunk; only the chunk in flight is in memory. */
export async function openFileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    size,
    async read(offset, length) {
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      return buffer.subarray(0, bytesRead);
    },
    close: () => handle.close(),
  };
}

/**
 * Writes to a temporary file beside `finalPath`, hashing as it goes; `finish` moves it into place
 * only when complete and, given `expectSha256`, only when its content is that hash: a half-received
 * or corrupted file never takes the place of a whole one.
 */
export function fileSink(
  finalPath: string,
  options: { expectSha256?: string; onFinish?: (sha256: string, size: number) => void | Promise<void> } = {},
): ByteSink {
  const temporary = join(dirname(finalPath), `.partial-${randomBytes(6).toString('hex')}`);
  const hash = createHash('sha256');
  let size = 0;
  let handle: Promise<FileHandle> | undefined;
  const opened = () => (handle ??= mkdir(dirname(finalPath), { recursive: true }).then(() => open(temporary, 'wx')));
  return {
    async write(chunk) {
      const file = await opened();
      hash.update(chunk);
      size += chunk.byteLength;
      await file.write(chunk);
    },
    async finish() {
      const file = await opened();
      await file.close();
      const sha256 = hash.digest('hex');
      if (options.expectSha256 && sha256 !== options.expectSha256) {
        await rm(temporary, { force: true });
        return sha256;
      }
      await rename(temporary, finalPath);
      await options.onFinish?.(sha256, size);
      return sha256;
    },
    async abort(_error: PeerdockError) {
      if (handle) await (await handle).close().catch(() => {});
      await rm(temporary, { force: true });
    },
  };
}

export async function sha256OfFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

export async function fileExists(path: string): Promise<boolean> {
  return stat(path).then(
    (info) => info.isFile(),
    () => false,
  );
}

/**
 * Like fileSink, but the partial file has a fixed name and survives a lost connection, so the
 * next transfer of the same content continues at `offset` (the bytes already there are hashed
 * first). A failure other than a lost peer discards it.
 */
export function resumableFileSink(finalPath: string, partialPath: string, expectSha256: string, offset: number): ByteSink {
  const hash = createHash('sha256');
  let handle: Promise<FileHandle> | undefined;
  const opened = () =>
    (handle ??= (async () => {
      await mkdir(dirname(partialPath), { recursive: true });
      const file = await open(partialPath, offset > 0 ? 'r+' : 'w');
      if (offset > 0) {
        const { size } = await file.stat();
        if (size < offset) throw new Error(`partial file has ${size} bytes, cannot resume at ${offset}`);
        await file.truncate(offset);
        for await (const chunk of createReadStream('', { fd: file.fd, start: 0, end: offset - 1, autoClose: false, highWaterMark: 1024 * 1024 })) {
          hash.update(chunk as Buffer);
        }
      }
      return file;
    })());
  let position = offset;
  return {
    async write(chunk) {
      const file = await opened();
      hash.update(chunk);
      await file.write(chunk, 0, chunk.byteLength, position);
      position += chunk.byteLength;
    },
    async finish() {
      const file = await opened();
      await file.close();
      const sha256 = hash.digest('hex');
      if (sha256 === expectSha256) await rename(partialPath, finalPath);
      else await rm(partialPath, { force: true });
      return sha256;
    },
    async abort(error: PeerdockError) {
      if (handle) await (await handle).close().catch(() => {});
      if (error.code !== 'ERR_PEER_LOST') await rm(partialPath, { force: true });
    },
  };
}

export async function fileSize(path: string): Promise<number> {
  return stat(path).then(
    (info) => (info.isFile() ? info.size : 0),
    () => 0,
  );
}
