import type SimplePeer from 'simple-peer';
import type { Transport } from '../protocol/link.js';

interface ChannelLike {
  bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
}

/** Adapts a connected simple-peer instance (created with `objectMode: true`) to a Link transport. */
export function simplePeerTransport(peer: SimplePeer.Instance): Transport {
  const channel = (peer as unknown as { _channel?: ChannelLike })._channel;
  let closed = false;
  const closeListeners: Array<(error?: Error) => void> = [];
  let lastError: Error | undefined;
  peer.on('error', (error: Error) => (lastError = error));
  peer.on('close', () => {
    closed = true;
    for (const listener of closeListeners) listener(lastError);
  });

  return {
    sendText: (text) => peer.send(text),
    sendBinary: (frame) => peer.send(frame),
    bufferedAmount: () => channel?.bufferedAmount ?? 0,
    waitForBufferedAmountBelow(threshold) {
      return new Promise<void>((resolve) => {
        if (!channel || closed || channel.bufferedAmount <= threshold) return resolve();
        // The bufferedamountlow event wakes us promptly; the poll is a guard for implementations
        // that fire it late or not at all.
        const done = () => {
          clearInterval(poll);
          channel.removeEventListener?.('bufferedamountlow', check);
          resolve();
        };
        const check = () => {
          if (closed || channel.bufferedAmount <= threshold) done();
        };
        channel.bufferedAmountLowThreshold = threshold;
        channel.addEventListener?.('bufferedamountlow', check);
        const poll = setInterval(check, 5);
      });
    },
    onFrame(listener) {
      peer.on('data', (data: string | Uint8Array | ArrayBuffer) => {
        if (typeof data === 'string') listener(data);
        else if (data instanceof ArrayBuffer) listener(new Uint8Array(data));
        else listener(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      });
    },
    onClose(listener) {
      if (closed) queueMicrotask(() => listener(lastError));
      else closeListeners.push(listener);
    },
    close: () => peer.destroy(),
  };
}
