import createDebug from 'debug';
import SimplePeer from 'simple-peer';
import { toHex } from '../protocol/encoding.js';
import { PeerdockError } from '../protocol/errors.js';
import { Link } from '../protocol/link.js';
import type { IceServer } from '../protocol/signaling-events.js';
import { CandidateTally, describeConnection, explainConnectFailure, readConnectionReport, type ConnectionReport } from './connection-report.js';
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
  /**
   * Our own ICE servers (`--ice-servers`), used before and in addition to those the signaling
   * server hands out.
   */
  iceServers?: IceServer[];
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;

/** Worker side: the candidate tally of each accepted peer, fed by acceptPeers. */
const peerTallies = new WeakMap<SimplePeer.Instance, CandidateTally>();

export interface PeerSession {
  link: Link;
  peer: SimplePeer.Instance;
  remoteSocketId: string;
  session: string;
  /** How the connection was made (selected candidate pair), when getStats() could tell. */
  connection?: ConnectionReport;
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
  // simple-peer often emits its first candidates before the offer: keep them for a while.
  const early = new Map<string, SignalPayload[]>();
  return signaling.onSignal((from, payload) => {
    const key = `${from}/${payload.session}`;
    const existing = pending.get(key);
    if (existing) return existing(payload);
    if (payload.signal.type !== 'offer') {
      const held = early.get(key) ?? [];
      if (held.length === 0) setTimeout(() => early.delete(key), DEFAULT_CONNECT_TIMEOUT_MS).unref?.();
      if (held.length < MAX_EARLY_SIGNALS) early.set(key, [...held, payload]);
      return;
    }
    const peer = createPeer(signaling, false, options);
    const feed = (next: SignalPayload) => {
      peerTallies.get(peer)?.addRemote(next.signal);
      peer.signal(applyAdjust(next.signal, options) as unknown as SimplePeer.SignalData);
    };
    pending.set(key, feed);
    wirePeer(signaling, peer, from, payload.session, options, false)
      .then(onPeer, (error: Error) => debug('peer %s failed to connect: %s', key, error.message))
      .finally(() => pending.delete(key));
    feed(payload);
    for (const held of early.get(key) ?? []) feed(held);
    early.delete(key);
  });
}

const MAX_EARLY_SIGNALS = 32;

function createPeer(signaling: SignalingClient, initiator: boolean, options: PeerOptions): SimplePeer.Instance {
  return new SimplePeer({
    initiator,
    wrtc: options.wrtc,
    trickle: true,
    objectMode: true,
    // Always explicit: simple-peer's default points at public STUN servers.
    config: { iceServers: effectiveIceServers(signaling, options) },
  });
}

export function effectiveIceServers(signaling: SignalingClient, options: PeerOptions): IceServer[] {
  return [...(options.iceServers ?? []), ...signaling.iceServers];
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
  const startedAt = Date.now();
  const tally = new CandidateTally();
  // What this attempt really used: the servers simple-peer was given (ours, then the server's).
  const iceServers = effectiveIceServers(signaling, options);
  const peerName = listen ? 'the worker' : 'the client';
  // The worker side (listen = false) is fed by acceptPeers; count what it applies there too.
  if (!listen) peerTallies.set(peer, tally);
  return new Promise<PeerSession>((resolve, reject) => {
    let settled = false;
    const stopListening = listen
      ? signaling.onSignal((from, payload) => {
          if (from === remoteSocketId && payload.session === session) {
            tally.addRemote(payload.signal);
            peer.signal(applyAdjust(payload.signal, options) as unknown as SimplePeer.SignalData);
          }
        })
      : () => {};
    // The server says the peer is gone: no use waiting for the deadline.
    const stopWatchingRefusals = signaling.onServerError((refusal) => {
      if (refusal.code === 'ERR_SIGNAL_TARGET' && refusal.target === remoteSocketId) {
        fail(new PeerdockError('ERR_PEER_LOST', `${peerName} left the queue before the connection was made`));
      }
    });
    const fail = (error: PeerdockError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stopListening();
      stopWatchingRefusals();
      peer.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () =>
        fail(
          new PeerdockError(
            'ERR_CONNECT_TIMEOUT',
            `no connection to ${peerName} within ${Math.round(timeoutMs / 1000)}s. ${explainConnectFailure(tally, iceServers, peerName)}`,
          ),
        ),
      timeoutMs,
    );
    peer.on('signal', (signal: SimplePeer.SignalData) => {
      tally.addLocal(signal);
      signaling.sendSignal(remoteSocketId, { session, signal: signal as unknown as Record<string, unknown> }).catch((error: Error) =>
        fail(new PeerdockError('ERR_SIGNALING', `could not send a signal: ${error.message}`)),
      );
    });
    peer.once('error', (error: Error & { code?: string }) => {
      if (error.code === 'ERR_ICE_CONNECTION_FAILURE' || error.code === 'ERR_CONNECTION_FAILURE') {
        // ICE gave up before our deadline: the same diagnosis as a timeout.
        const after = Math.round((Date.now() - startedAt) / 1000);
        return fail(new PeerdockError('ERR_CONNECT_TIMEOUT', `no connection to ${peerName}: ICE gave up after ${after}s. ${explainConnectFailure(tally, iceServers, peerName)}`));
      }
      fail(new PeerdockError('ERR_PEER_LOST', `peer connection failed (${error.code ?? 'error'}): ${error.message}`));
    });
    peer.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stopListening();
      stopWatchingRefusals();
      const connectMs = Date.now() - startedAt;
      // Link first: it must be listening before the first message can arrive.
      const link = new Link(simplePeerTransport(peer));
      const pc = (peer as unknown as { _pc?: { getStats(): Promise<unknown> } })._pc;
      let reported = false;
      const done = (connection?: ConnectionReport) => {
        if (reported) return;
        reported = true;
        if (connection) connection.connectMs = connectMs;
        debug('connected to %s (session %s): %s', remoteSocketId, session, connection ? describeConnection(connection) : `in ${connectMs} ms`);
        resolve({ link, peer, remoteSocketId, session, ...(connection ? { connection } : {}) });
      };
      // getStats() answers at once in both implementations; never let it hold the session up.
      const guard = setTimeout(() => done(), 1000);
      readConnectionReport(pc)
        .catch((error: Error) => debug('getStats failed: %s', error.message))
        .then((report) => {
          clearTimeout(guard);
          done(report ?? undefined);
        });
    });
  });
}
