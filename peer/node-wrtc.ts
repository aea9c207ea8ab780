import { networkInterfaces } from 'node:os';
import { RTCIceCandidate, RTCPeerConnection, RTCSessionDescription } from 'node-datachannel/polyfill';
import type { IceServer } from '../protocol/signaling-events.js';
import type { Wrtc } from './connect.js';

export interface NodeWrtcOptions {
  /**
   * ICE servers of this process (`peerdock worker run --ice-servers`), used before and in addition
   * to those of each connection (the signaling server's).
   */
  iceServers?: IceServer[];
}

/**
 * The WebRTC implementation simple-peer uses in Node: node-datachannel's polyfill, with two
 * corrections measured on these machines (see shared/design.md):
 * - simple-peer assigns to the `sdp` of a created description, which the polyfill makes read-only,
 *   so offers and answers are handed out as plain objects;
 * - on a host whose only interface is loopback, ICE gathers nothing unless bound to 127.0.0.1.
 */
export function nodeWrtc(options: NodeWrtcOptions = {}): Wrtc {
  const bindAddress = onlyLoopback() ? '127.0.0.1' : undefined;
  const ownServers = options.iceServers ?? [];

  class PeerConnection extends RTCPeerConnection {
    constructor(config: RTCConfiguration = {}) {
      const iceServers = [...ownServers, ...(config.iceServers ?? [])] as RTCIceServer[];
      super({ ...config, iceServers: encodeIceServers(iceServers), ...(bindAddress ? { bindAddress } : {}) } as RTCConfiguration);
    }
    override async createOffer(): Promise<RTCSessionDescriptionInit> {
      const description = await super.createOffer();
      return { type: description.type, sdp: description.sdp };
    }
    override async createAnswer(): Promise<RTCSessionDescriptionInit> {
      const description = await super.createAnswer();
      return { type: description.type, sdp: description.sdp };
    }
  }
  return { RTCPeerConnection: PeerConnection, RTCSessionDescription, RTCIceCandidate } as unknown as Wrtc;
}

function onlyLoopback(): boolean {
  return Object.values(networkInterfaces())
    .flat()
    .every((address) => !address || address.internal);
}

/** node-datachannel parses TURN credentials out of the URL: they must be percent-encoded. */
function encodeIceServers(servers: RTCIceServer[] | IceServer[]): RTCIceServer[] {
  return servers.map((server) => {
    const { username, credential } = server;
    if (!username || typeof credential !== 'string') return server as RTCIceServer;
    return { ...server, username: encodeURIComponent(username), credential: encodeURIComponent(credential) } as RTCIceServer;
  });
}

/**
 * An offer's `a=setup:actpass` rewritten to `a=setup:active` makes the offerer the DTLS client up
 * front, which removes the 1 s DTLS stall measured in ~40% of node↔node connects.
 */
export function preferActiveDtls<T extends { type?: string; sdp?: string }>(signal: T): T {
  if (signal.type !== 'offer' || !signal.sdp) return signal;
  return { ...signal, sdp: signal.sdp.replace(/a=setup:actpass/g, 'a=setup:active') };
}
