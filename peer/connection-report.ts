import type { IceServer } from '../protocol/signaling-events.js';

/**
 * How a peer connection was made and, when it was not, what was tried. Isomorphic: runs on
 * node-datachannel's polyfill and in browsers (both implement the standard getStats() entries
 * `transport.selectedCandidatePairId`, `candidate-pair`, `local-candidate`, `remote-candidate`).
 */

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';
const CANDIDATE_TYPES: CandidateType[] = ['host', 'srflx', 'prflx', 'relay'];

/** direct: host addresses reach each other; stun: through NAT mappings learned via STUN; relay: through TURN. */
export type ConnectionKind = 'direct' | 'stun' | 'relay';

export interface CandidateInfo {
  type: CandidateType | string;
  protocol?: string;
  address?: string;
  port?: number;
}

export interface ConnectionReport {
  kind: ConnectionKind;
  local: CandidateInfo;
  remote: CandidateInfo;
  /** From starting the attempt to the open data channel (dialing side only). */
  connectMs?: number;
}

export function connectionKind(local: string, remote: string): ConnectionKind {
  if (local === 'relay' || remote === 'relay') return 'relay';
  if (local === 'srflx' || remote === 'srflx') return 'stun';
  return 'direct';
}

/** One line for people: `relayed through TURN (relay ↔ srflx, udp), connected in 312 ms`. */
export function describeConnection(report: ConnectionReport): string {
  const how = { direct: 'direct', stun: 'direct through NAT via STUN', relay: 'relayed through TURN' }[report.kind];
  const protocol = report.local.protocol ?? report.remote.protocol;
  const pair = `${report.local.type} ↔ ${report.remote.type}${protocol ? `, ${protocol}` : ''}`;
  return `${how} (${pair})${report.connectMs !== undefined ? `, connected in ${report.connectMs} ms` : ''}`;
}

interface StatsEntry {
  id: string;
  type: string;
  [key: string]: unknown;
}

/** Reads the selected candidate pair from an RTCPeerConnection's getStats(). */
export async function readConnectionReport(pc: { getStats(): Promise<unknown> } | undefined): Promise<ConnectionReport | undefined> {
  if (!pc || typeof pc.getStats !== 'function') return undefined;
  const stats = (await pc.getStats()) as Map<string, StatsEntry> | { forEach(fn: (value: StatsEntry) => void): void };
  const entries = new Map<string, StatsEntry>();
  stats.forEach((entry: StatsEntry) => entries.set(entry.id, entry));
  const all = [...entries.values()];
  const transport = all.find((entry) => entry.type === 'transport' && typeof entry.selectedCandidatePairId === 'string');
  const pair =
    (transport ? entries.get(transport.selectedCandidatePairId as string) : undefined) ??
    all.find((entry) => entry.type === 'candidate-pair' && entry.selected === true) ??
    all.find((entry) => entry.type === 'candidate-pair' && entry.nominated === true && entry.state === 'succeeded');
  if (!pair) return undefined;
  const local = entries.get(pair.localCandidateId as string);
  const remote = entries.get(pair.remoteCandidateId as string);
  if (!local || !remote) return undefined;
  const info = (entry: StatsEntry): CandidateInfo => ({
    type: normaliseType(String(entry.candidateType)),
    ...(typeof entry.protocol === 'string' ? { protocol: entry.protocol } : {}),
    ...(typeof (entry.address ?? entry.ip) === 'string' ? { address: String(entry.address ?? entry.ip) } : {}),
    ...(typeof entry.port === 'number' ? { port: entry.port } : {}),
  });
  const localInfo = info(local);
  const remoteInfo = info(remote);
  return { kind: connectionKind(localInfo.type, remoteInfo.type), local: localInfo, remote: remoteInfo };
}

function normaliseType(type: string): string {
  const lower = type.toLowerCase().replace(/[-_\s]/g, '');
  if (lower === 'serverreflexive') return 'srflx';
  if (lower === 'peerreflexive') return 'prflx';
  if (lower === 'relayed') return 'relay';
  return lower;
}

/** Counts candidate types seen in simple-peer signals: trickled candidates and `a=candidate` lines of an SDP. */
export class CandidateTally {
  readonly local = new Map<string, number>();
  readonly remote = new Map<string, number>();
  /** Signals received from the peer, candidates or not. */
  remoteSignals = 0;
  // The same candidate may come in an SDP and trickled again: count each address once.
  private readonly seen = new Set<string>();

  addLocal(signal: unknown): void {
    this.add('local', this.local, signal);
  }

  addRemote(signal: unknown): void {
    this.remoteSignals++;
    this.add('remote', this.remote, signal);
  }

  private add(side: string, counts: Map<string, number>, signal: unknown): void {
    for (const { type, key } of candidatesIn(signal)) {
      if (this.seen.has(`${side} ${key}`)) continue;
      this.seen.add(`${side} ${key}`);
      counts.set(type, (counts.get(type) ?? 0) + 1);
    }
  }
}

/** `candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> …` */
function candidatesIn(signal: unknown): Array<{ type: string; key: string }> {
  if (!signal || typeof signal !== 'object') return [];
  const lines: string[] = [];
  const { candidate, sdp } = signal as { candidate?: { candidate?: unknown }; sdp?: unknown };
  if (candidate && typeof candidate.candidate === 'string') lines.push(candidate.candidate);
  if (typeof sdp === 'string') lines.push(...sdp.split(/\r?\n/).filter((line) => line.startsWith('a=candidate:')));
  return lines.flatMap((line) => {
    const match = /candidate:\S+\s+\S+\s+(\S+)\s+\S+\s+(\S+)\s+(\d+)\s+typ\s+(\w+)/i.exec(line);
    return match ? [{ type: match[4]!.toLowerCase(), key: `${match[1]!.toLowerCase()} ${match[2]} ${match[3]} ${match[4]}` }] : [];
  });
}

function listTypes(counts: Map<string, number>): string {
  if (counts.size === 0) return 'none';
  return (CANDIDATE_TYPES as string[])
    .filter((type) => counts.has(type))
    .concat([...counts.keys()].filter((type) => !CANDIDATE_TYPES.includes(type as CandidateType)))
    .map((type) => `${type} ×${counts.get(type)}`)
    .join(', ');
}

export function countIceServers(servers: ReadonlyArray<IceServer | RTCIceServer>): { stun: number; turn: number } {
  let stun = 0;
  let turn = 0;
  for (const server of servers) {
    for (const url of Array.isArray(server.urls) ? server.urls : [server.urls]) {
      if (/^stuns?:/i.test(url)) stun++;
      else if (/^turns?:/i.test(url)) turn++;
    }
  }
  return { stun, turn };
}

/**
 * The sentence a user reads when a connection could not be made: what was tried, and what
 * usually fixes it.
 */
export function explainConnectFailure(tally: CandidateTally, iceServers: ReadonlyArray<IceServer | RTCIceServer>, peerName = 'the peer'): string {
  const { stun, turn } = countIceServers(iceServers);
  const servers = stun + turn === 0 ? 'no STUN or TURN server' : [stun ? `${stun} STUN` : 'no STUN', turn ? `${turn} TURN` : 'no TURN'].join(' and ') + ' URL(s)';
  const tried = `Tried: our candidates ${listTypes(tally.local)}; ${peerName}'s ${tally.remoteSignals === 0 ? 'none (no signal came back)' : listTypes(tally.remote)}; ${servers}.`;
  const localRelay = tally.local.has('relay');
  const remoteRelay = tally.remote.has('relay');
  let fix: string;
  if (tally.remoteSignals === 0) {
    fix = `${peerName} never answered through the signaling server: it may have just gone away, or it runs an incompatible version.`;
  } else if (turn === 0) {
    fix =
      'At least one side is probably behind a symmetric NAT or a strict firewall, where only a relay works: a TURN server usually fixes this ' +
      '(coturn, then "peerdock signal --turn turn:<host>:3478 --turn-secret <secret>", or --ice-servers with a turn: entry).';
  } else if (!localRelay) {
    fix = 'A TURN server is configured but gave us no relay candidate: check that its URL is reachable from here and that it shares the signaling server\'s --turn-secret (or that the --ice-servers credentials are right).';
  } else if (!remoteRelay) {
    fix = `A TURN server is configured but ${peerName} gathered no relay candidate: check that it can reach the TURN server (and its own --ice-servers).`;
  } else {
    fix =
      'Both sides had relay candidates and still could not connect: check the TURN server. coturn should refuse private peers ' +
      '(--denied-peer-ip for 10.0.0.0-10.255.255.255, 172.16.0.0-172.31.255.255, 192.168.0.0-192.168.255.255; without them ICE was measured to stall) ' +
      'but not its own public address, and no firewall may block its relay ports.';
  }
  return `${tried} ${fix}`;
}
