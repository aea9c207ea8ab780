import { PeerdockError, toPeerdockError } from './errors.js';
import { decodeChunk, decodeMessage, encodeChunk, encodeMessage, MAX_CHUNK_BYTES } from './framing.js';
import type { FileStartMessage, Message } from './messages.js';

/** The bare data channel underneath a Link: text and binary frames, plus its send buffer. */
export interface Transport {
  sendText(text: string): void;
  sendBinary(frame: Uint8Array): void;
  bufferedAmount(): number;
  /** Resolves once the send buffer is at or below `threshold` bytes, or the transport closed. */
  waitForBufferedAmountBelow(threshold: number): Promise<void>;
  onFrame(listener: (frame: string | Uint8Array) => void): void;
  onClose(listener: (error?: Error) => void): void;
  close(): void;
}

/** Where a file's bytes come from: a disk file, a browser Blob, a string. */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Where received bytes go. `finish` returns the sha256 of everything written. */
export interface ByteSink {
  write(chunk: Uint8Array): Promise<void>;
  finish(): Promise<string>;
  abort(error: PeerdockError): Promise<void>;
}

export type SinkFactory = (start: FileStartMessage) => ByteSink | Promise<ByteSink>;
export type Progress = (done: number, total: number) => void;

/** Flow control: at most WINDOW bytes unacknowledged, acks every ACK_INTERVAL written bytes. */
export const TRANSFER_WINDOW_BYTES = 8 * 1024 * 1024;
export const ACK_INTERVAL_BYTES = 512 * 1024;
export const BUFFER_HIGH_WATER_BYTES = 1024 * 1024;
export const BUFFER_LOW_WATER_BYTES = 256 * 1024;
/** Pings every second; 5 s without a frame from the peer means it is gone. */
export const DEFAULT_LIVENESS = { intervalMs: 1000, timeoutMs: 5000 };

interface Outgoing {
  acked: number;
  error?: PeerdockError;
  ackWaiter?: () => void;
  settle: { resolve: () => void; reject: (error: PeerdockError) => void };
}

interface Incoming {
  start: FileStartMessage;
  received: number;
  written: number;
  lastAck: number;
  sink: Promise<ByteSink>;
  chain: Promise<void>;
  failed: boolean;
}

/**
 * One end of a peer connection: typed control messages plus streamed, acknowledged, hash-checked
 * file transfers in both directions. The same class runs in the worker, the CLI and the browser.
 */
export class Link {
  private nextStream = 1;
  private readonly outgoing = new Map<number, Outgoing>();
  private readonly incoming = new Map<number, Incoming>();
  private readonly failedStreams = new Set<number>();
  private readonly messageListeners = new Set<(message: Message) => void>();
  private readonly closeListeners = new Set<(error: PeerdockError) => void>();
  private sinkFactory: SinkFactory | undefined;
  private closedWith: PeerdockError | undefined;

  private lastHeard = Date.now();
  private readonly heartbeat: ReturnType<typeof setInterval>;

  constructor(
    private readonly transport: Transport,
    private readonly liveness: { intervalMs: number; timeoutMs: number } = DEFAULT_LIVENESS,
  ) {
    transport.onFrame((frame) => {
      this.lastHeard = Date.now();
      this.onFrame(frame);
    });
    transport.onClose((error) =>
      this.shutdown(new PeerdockError('ERR_PEER_LOST', `the peer connection closed${error ? `: ${error.message}` : ''}`)),
    );
    // A peer that vanished (kill -9, sleep, cable) sends no close: ICE takes ~30 s to notice.
    // Both ends ping; silence past the timeout is a lost peer.
    this.heartbeat = setInterval(() => this.beat(), liveness.intervalMs);
    (this.heartbeat as { unref?: () => void }).unref?.();
  }

  private beat(): void {
    const silentMs = Date.now() - this.lastHeard;
    if (silentMs > this.liveness.timeoutMs) {
      this.transport.close();
      this.shutdown(new PeerdockError('ERR_PEER_LOST', `the peer went silent for ${Math.round(silentMs / 1000)}s`));
    } else {
      this.trySend({ t: 'ping' });
    }
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  send(message: Message): void {
    this.transmit(() => this.transport.sendText(encodeMessage(message)));
  }

  /** A send that fails means the channel is gone: report it as a lost peer, once. */
  private transmit(send: () => void): void {
    if (this.closedWith) throw this.closedWith;
    try {
      send();
    } catch (error) {
      this.shutdown(new PeerdockError('ERR_PEER_LOST', `the peer connection failed: ${(error as Error).message}`, { cause: error }));
      throw this.closedWith!;
    }
  }

  onMessage(listener: (message: Message) => void): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  onClose(listener: (error: PeerdockError) => void): () => void {
    if (this.closedWith) queueMicrotask(() => listener(this.closedWith!));
    else this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Decides where incoming files go; without one, every incoming file is refused. */
  acceptFiles(factory: SinkFactory): void {
    this.sinkFactory = factory;
  }

  /**
   * Streams a file to the peer, from `meta.offset` when the peer already holds the start of it;
   * resolves once the peer has verified the whole file's sha256.
   */
  async sendFile(meta: Omit<FileStartMessage, 't' | 'stream' | 'size'>, source: ByteSource, onProgress?: Progress): Promise<void> {
    const stream = this.nextStream++;
    const size = source.size;
    const start = meta.offset ?? 0;
    if (start > size) throw new PeerdockError('ERR_TRANSFER', `cannot resume at ${start}: the file has ${size} bytes`);
    const done = new Promise<void>((resolve, reject) => {
      this.outgoing.set(stream, { acked: 0, settle: { resolve, reject } });
    });
    done.catch(() => {}); // observed below; avoid an unhandled rejection while we are still sending
    const entry = this.outgoing.get(stream)!;
    entry.acked = start;
    this.send({ t: 'file-start', stream, size, ...meta });
    let offset = start;
    try {
      while (offset < size) {
        if (this.closedWith) throw this.closedWith;
        if (entry.error) throw entry.error;
        while (offset - entry.acked >= TRANSFER_WINDOW_BYTES && !this.closedWith && !entry.error) {
          await new Promise<void>((resolve) => (entry.ackWaiter = resolve));
        }
        if (this.transport.bufferedAmount() > BUFFER_HIGH_WATER_BYTES) {
          await this.transport.waitForBufferedAmountBelow(BUFFER_LOW_WATER_BYTES);
        }
        if (this.closedWith) throw this.closedWith;
        if (entry.error) throw entry.error;
        const chunk = await source.read(offset, Math.min(MAX_CHUNK_BYTES, size - offset));
        if (chunk.byteLength === 0) throw new PeerdockError('ERR_TRANSFER', `source ended at ${offset} of ${size} bytes`);
        this.transmit(() => this.transport.sendBinary(encodeChunk(stream, chunk)));
        offset += chunk.byteLength;
        onProgress?.(offset, size);
      }
      if (start === size) onProgress?.(size, size);
      await done;
    } finally {
      this.outgoing.delete(stream);
    }
  }

  close(): void {
    this.transport.close();
    this.shutdown(new PeerdockError('ERR_PEER_LOST', 'the connection was closed locally'));
  }

  private onFrame(frame: string | Uint8Array): void {
    if (this.closedWith) return;
    try {
      if (typeof frame === 'string') this.onControl(decodeMessage(frame));
      else this.onChunk(frame);
    } catch (error) {
      const problem = toPeerdockError(error, 'ERR_BAD_MESSAGE');
      this.trySend({ t: 'error', code: problem.code, message: problem.message });
    }
  }

  private onControl(message: Message): void {
    switch (message.t) {
      case 'ping':
        // Answered at once, from the event rather than a timer: a throttled background tab
        // still proves it is alive.
        return this.trySend({ t: 'pong' });
      case 'pong':
        return;
      case 'file-start':
        return this.onFileStart(message);
      case 'ack': {
        const entry = this.outgoing.get(message.stream);
        if (entry && message.offset > entry.acked) {
          entry.acked = message.offset;
          entry.ackWaiter?.();
          entry.ackWaiter = undefined;
        }
        return;
      }
      case 'file-done':
        this.outgoing.get(message.stream)?.settle.resolve();
        return;
      case 'file-error': {
        const entry = this.outgoing.get(message.stream);
        if (entry) {
          entry.error = new PeerdockError(message.code, message.message);
          entry.settle.reject(entry.error);
          entry.ackWaiter?.();
        }
        return;
      }
      default:
        for (const listener of this.messageListeners) listener(message);
    }
  }

  private onFileStart(start: FileStartMessage): void {
    if (this.incoming.has(start.stream)) {
      throw new PeerdockError('ERR_BAD_MESSAGE', `file stream ${start.stream} was started twice`);
    }
    const factory = this.sinkFactory;
    const sink = factory
      ? Promise.resolve().then(() => factory(start))
      : Promise.reject(new PeerdockError('ERR_BAD_MESSAGE', 'this side does not accept files'));
    const offset = start.offset ?? 0;
    if (offset > start.size) throw new PeerdockError('ERR_BAD_MESSAGE', `file stream ${start.stream} starts past its end`);
    const entry: Incoming = { start, received: offset, written: offset, lastAck: offset, sink, chain: Promise.resolve(), failed: false };
    this.incoming.set(start.stream, entry);
    sink.catch((error) => this.failIncoming(entry, toPeerdockError(error, 'ERR_TRANSFER')));
    if (offset === start.size) entry.chain = entry.chain.then(() => this.finishIncoming(entry));
  }

  private onChunk(frame: Uint8Array): void {
    const { stream, data } = decodeChunk(frame);
    const entry = this.incoming.get(stream);
    // Chunks still in flight for a file already refused are expected: drop them quietly.
    if (!entry && this.failedStreams.has(stream)) return;
    if (!entry) throw new PeerdockError('ERR_BAD_MESSAGE', `chunk for unknown file stream ${stream}`);
    if (entry.failed) return;
    entry.received += data.byteLength;
    if (entry.received > entry.start.size) {
      this.failIncoming(entry, new PeerdockError('ERR_TRANSFER', `received more than the announced ${entry.start.size} bytes`));
      return;
    }
    const complete = entry.received === entry.start.size;
    entry.chain = entry.chain.then(async () => {
      if (entry.failed) return;
      try {
        await (await entry.sink).write(data);
      } catch (error) {
        this.failIncoming(entry, toPeerdockError(error, 'ERR_TRANSFER'));
        return;
      }
      entry.written += data.byteLength;
      if (entry.written - entry.lastAck >= ACK_INTERVAL_BYTES || complete) {
        entry.lastAck = entry.written;
        this.trySend({ t: 'ack', stream, offset: entry.written });
      }
      if (complete) await this.finishIncoming(entry);
    });
  }

  private async finishIncoming(entry: Incoming): Promise<void> {
    if (entry.failed) return;
    try {
      const sink = await entry.sink;
      const sha256 = await sink.finish();
      if (sha256 !== entry.start.sha256) {
        const where = entry.start.path ? `"${entry.start.path}"` : `input ${entry.start.sha256.slice(0, 12)}`;
        throw new PeerdockError(
          'ERR_HASH_MISMATCH',
          `${where} arrived corrupted: its sha256 is ${sha256}, expected ${entry.start.sha256}`,
        );
      }
      this.incoming.delete(entry.start.stream);
      this.trySend({ t: 'file-done', stream: entry.start.stream });
    } catch (error) {
      this.failIncoming(entry, toPeerdockError(error, 'ERR_TRANSFER'));
    }
  }

  private failIncoming(entry: Incoming, error: PeerdockError): void {
    if (entry.failed) return;
    entry.failed = true;
    this.incoming.delete(entry.start.stream);
    this.failedStreams.add(entry.start.stream);
    void entry.sink.then((sink) => sink.abort(error)).catch(() => {});
    this.trySend({ t: 'file-error', stream: entry.start.stream, code: error.code, message: error.message });
  }

  private trySend(message: Message): void {
    if (this.closedWith) return;
    try {
      this.send(message);
    } catch {
      // the close handler reports the lost connection
    }
  }

  private shutdown(error: PeerdockError): void {
    if (this.closedWith) return;
    this.closedWith = error;
    clearInterval(this.heartbeat);
    for (const entry of this.outgoing.values()) {
      entry.settle.reject(error);
      entry.ackWaiter?.();
    }
    for (const entry of this.incoming.values()) {
      entry.failed = true;
      void entry.sink.then((sink) => sink.abort(error)).catch(() => {});
    }
    this.incoming.clear();
    for (const listener of this.closeListeners) listener(error);
    this.closeListeners.clear();
  }
}
