import createDebug from 'debug';
import SimplePeer from 'simple-peer';
import { toHex } from '../protocol/encoding.js';
import { PeerdockError } from '../protocol/errors.js';
import { Link } from '../protocol/link.js';
import type { SignalingClient, SignalPayload } from './signaling-client.js';
import { simplePeerTransport } from './simple-peer-transport.js';

const debug = createDebug('peerdock:peer');

/** The WebRTC implementation: `nodeWrtc()` in Node, undefined in a browser (its own globals). */
export type Wrtc = SimplePeer.Options['wrtc'];

export interface PeerOptions {
  wrtc?: Wrtc;
  /** Our own deadline for ICE + DTLS: the libraries do not report failure on their own. */
  connectTimeoutMs?: number;
  /** Rewrites a remote signal before it is applied (see preferActiveDtls). */
  adjustRemoteSignal?: (signal: Record<string, unknown>) => Record<string, unknown>;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;

export interface PeerSession {
  link: Link;
  peer: SimplePeer.Instance;
  remoteSocketId: string;
  session: string;
}

/** Opens a data channel to one worker through the signaling server. */
export function dialPeer(signaling: SignalingClient, remoteSocketId: string, options: PeerOptions = {}): Promise<PeerSession> {
  const session = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const peer = createPeer(signaling, true, options);
  return wirePeer(signaling, peer, remoteSocketId, session, options);
}

/**
 * Worker side: answers every authenticated peer that signals us. Signals that do not open with
 * the queue key never get here (SignalingClient drops them).
 */
export function acceptPeers(signaling: SignalingClient, options: PeerOptions, onPeer: (session: PeerSession) => void): () => void {
  const pending = new Map<string, (payload: SignalPayload) => void>();
  return signaling.onSignal((from, payload) => {
    const key = `${from}/${payload.session}`;
    const existing = pending.get(key);
    if (existing) return existing(payload);
    if (payload.signal.type !== 'offer') return debug('ignoring a %s for unknown session %s', payload.signal.type, key);
    const peer = createPeer(signaling, false, options);
    const feed = (next: SignalPayload) => peer.signal(applyAdjust(next.signal, options) as unknown as SimplePeer.SignalData);
    pending.set(key, feed);
    wirePeer(signaling, peer, from, payload.session, options, false)
      .then(onPeer, (error: Error) => debug('peer %s failed to connect: %s', key, error.message))
      .finally(() => pending.delete(key));
    feed(payload);
  });
}

function createPeer(signaling: SignalingClient, initiator: boolean, options: PeerOptions): SimplePeer.Instance {
  return new SimplePeer({
    initiator,
    wrtc: options.wrtc,
    trickle: true,
    objectMode: true,
    // Always explicit: simple-peer's default points at public STUN servers.
    config: { iceServers: signaling.iceServers },
  });
}

function applyAdjust(signal: Record<string, unknown>, options: PeerOptions): Record<string, unknown> {
  return options.adjustRemoteSignal ? options.adjustRemoteSignal(signal) : signal;
}

function wirePeer(
  signaling: SignalingClient,
  peer: SimplePeer.Instance,
  remoteSocketId: string,
  session: string,
  options: PeerOptions,
  listen = true,
): Promise<PeerSession> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return new Promise<PeerSession>((resolve, reject) => {
    const stopListening = listen
      ? signaling.onSignal((from, payload) => {
          if (from === remoteSocketId && payload.session === session) {
            peer.signal(applyAdjust(payload.signal, options) as unknown as SimplePeer.SignalData);
          }
        })
      : () => {};
    const fail = (error: PeerdockError) => {
      clearTimeout(timer);
      stopListening();
      peer.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () =>
        fail(
          new PeerdockError(
            'ERR_CONNECT_TIMEOUT',
            `no direct connection to the peer within ${Math.round(timeoutMs / 1000)}s: the networks between you may need a TURN server (--ice-servers)`,
          ),
        ),
      timeoutMs,
    );
    peer.on('signal', (signal: SimplePeer.SignalData) => {
      signaling.sendSignal(remoteSocketId, { session, signal: signal as unknown as Record<string, unknown> }).catch((error: Error) =>
        fail(new PeerdockError('ERR_SIGNALING', `could not send a signal: ${error.message}`)),
      );
    });
    peer.once('error', (error: Error & { code?: string }) =>
      fail(new PeerdockError('ERR_PEER_LOST', `peer connection failed (${error.code ?? 'error'}): ${error.message}`)),
    );
    peer.once('connect', () => {
      clearTimeout(timer);
      stopListening();
      debug('connected to %s (session %s)', remoteSocketId, session);
      resolve({ link: new Link(simplePeerTransport(peer)), peer, remoteSocketId, session });
    });
  });
}
