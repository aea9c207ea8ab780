/**
 * The raw baseline: a simple-peer data channel with no peerdock protocol on it. Same libraries and
 * the same connection settings as peer/connect.ts (trickle, objectMode, explicit empty iceServers,
 * preferActiveDtls on the answering side), signals through the real SignalingClient, and the
 * same Transport adapter (peer/simple-peer-transport.ts) that Link uses, so the only thing left
 * out is Link itself: no framing header, no window or acks, no hashing, no disk.
 *
 * A sender announces `{"begin":N}` then sends N bytes in 64 KiB binary messages, waiting for the
 * send buffer to drain below LOW whenever it is above HIGH; the receiver counts bytes and answers
 * `{"done":N}` when it has them all. Isomorphic: runs in Node (wrtc = nodeWrtc()) and in Chromium.
 */
import SimplePeer from 'simple-peer';
import type { SignalingClient } from '../peer/signaling-client.js';
import { simplePeerTransport } from '../peer/simple-peer-transport.js';
import { BUFFER_HIGH_WATER_BYTES, BUFFER_LOW_WATER_BYTES, type Transport } from '../protocol/link.js';

export const RAW_MESSAGE_BYTES = 64 * 1024;

export interface RawEndpoint {
  /** Sends `bytes` and resolves with the milliseconds until the peer confirmed it has them all. */
  send(bytes: number, water?: { high: number; low: number }): Promise<number>;
  close(): void;
}

type Wrtc = SimplePeer.Options['wrtc'];

function preferActiveDtls(signal: Record<string, unknown>): Record<string, unknown> {
  if (signal.type !== 'offer' || typeof signal.sdp !== 'string') return signal;
  return { ...signal, sdp: signal.sdp.replace(/a=setup:actpass/g, 'a=setup:active') };
}

function newPeer(signaling: SignalingClient, initiator: boolean, wrtc: Wrtc): SimplePeer.Instance {
  return new SimplePeer({ initiator, wrtc, trickle: true, objectMode: true, config: { iceServers: [] } });
}

function session(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function endpoint(transport: Transport): RawEndpoint {
  let receiving = 0;
  let expected = -1;
  let doneWaiter: ((n: number) => void) | undefined;
  transport.onFrame((frame) => {
    if (typeof frame === 'string') {
      const message = JSON.parse(frame) as { begin?: number; done?: number };
      if (message.begin !== undefined) {
        expected = message.begin;
        receiving = 0;
        if (expected === 0) transport.sendText(JSON.stringify({ done: 0 }));
      } else if (message.done !== undefined) {
        doneWaiter?.(message.done);
      }
      return;
    }
    receiving += frame.byteLength;
    if (receiving === expected) transport.sendText(JSON.stringify({ done: receiving }));
  });
  return {
    async send(bytes, water = { high: BUFFER_HIGH_WATER_BYTES, low: BUFFER_LOW_WATER_BYTES }) {
      // One message buffer, filled with non-constant bytes once and sent again and again.
      const message = new Uint8Array(RAW_MESSAGE_BYTES);
      for (let i = 0; i < message.length; i += 65536) crypto.getRandomValues(message.subarray(i, i + 65536));
      const done = new Promise<number>((resolve) => (doneWaiter = resolve));
      const started = performance.now();
      transport.sendText(JSON.stringify({ begin: bytes }));
      let sent = 0;
      while (sent < bytes) {
        if (transport.bufferedAmount() > water.high) await transport.waitForBufferedAmountBelow(water.low);
        const size = Math.min(RAW_MESSAGE_BYTES, bytes - sent);
        // A fresh copy per message, as Link's encodeChunk makes a fresh frame per chunk.
        transport.sendBinary(size === RAW_MESSAGE_BYTES ? message.slice() : message.slice(0, size));
        sent += size;
      }
      await done;
      return performance.now() - started;
    },
    close: () => transport.close(),
  };
}

function wire(signaling: SignalingClient, peer: SimplePeer.Instance, remote: string, id: string, listen: boolean): Promise<RawEndpoint> {
  return new Promise((resolve, reject) => {
    const stop = listen
      ? signaling.onSignal((from, payload) => {
          if (from === remote && payload.session === id) peer.signal(payload.signal as unknown as SimplePeer.SignalData);
        })
      : () => {};
    const timer = setTimeout(() => reject(new Error('raw peer: no connection within 20 s')), 20_000);
    peer.on('signal', (signal: SimplePeer.SignalData) => {
      void signaling.sendSignal(remote, { session: id, signal: signal as unknown as Record<string, unknown> });
    });
    peer.once('error', (error: Error) => {
      clearTimeout(timer);
      stop();
      reject(error);
    });
    peer.once('connect', () => {
      clearTimeout(timer);
      stop();
      resolve(endpoint(simplePeerTransport(peer)));
    });
  });
}

/** Dials the first "worker" present in the signaling client's room. */
export async function dialRaw(signaling: SignalingClient, wrtc?: Wrtc): Promise<RawEndpoint> {
  const deadline = Date.now() + 20_000;
  while (signaling.workers.length === 0) {
    if (Date.now() > deadline) throw new Error('raw peer: nobody to dial');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const peer = newPeer(signaling, true, wrtc);
  return wire(signaling, peer, signaling.workers[0]!.socketId, session(), true);
}

/** Answers raw dials, applying preferActiveDtls to offers as the worker does. */
export function acceptRaw(signaling: SignalingClient, wrtc: Wrtc, onPeer: (peer: RawEndpoint) => void): void {
  const pending = new Map<string, SimplePeer.Instance>();
  signaling.onSignal((from, payload) => {
    const key = `${from}/${payload.session}`;
    let peer = pending.get(key);
    if (!peer) {
      if (payload.signal.type !== 'offer') return;
      peer = newPeer(signaling, false, wrtc);
      pending.set(key, peer);
      wire(signaling, peer, from, payload.session, false).then(onPeer, () => {});
    }
    peer.signal(preferActiveDtls(payload.signal) as unknown as SimplePeer.SignalData);
  });
}
