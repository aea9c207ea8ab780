import { createHmac, randomBytes } from 'node:crypto';
import type { IceServer } from '../protocol/signaling-events.js';

/**
 * Short-lived TURN credentials in the "TURN REST API" scheme that coturn implements with
 * `use-auth-secret` + `static-auth-secret` (also used by eturnal, Janus, Matrix):
 *
 *   username   = "<expiry as unix seconds>:<any id>"
 *   credential = base64(HMAC-SHA1(shared secret, username))
 *
 * The TURN server recomputes the credential from the username and its copy of the secret, and
 * refuses a username whose timestamp has passed. Only the signaling server and the TURN server
 * hold the secret; a client gets a credential that dies after `ttlSeconds`.
 */
export interface TurnCredentials {
  username: string;
  credential: string;
  /** Unix seconds after which the TURN server refuses them. */
  expiresAt: number;
}

export function mintTurnCredentials(
  secret: string,
  ttlSeconds: number,
  options: { id?: string; nowMs?: number } = {},
): TurnCredentials {
  if (!secret) throw new Error('a TURN secret is required');
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new Error('the TURN credential lifetime must be positive');
  const expiresAt = Math.floor((options.nowMs ?? Date.now()) / 1000) + Math.ceil(ttlSeconds);
  // The id only makes usernames distinct (coturn logs and quotas go by username); random, so it
  // links a credential to nothing.
  const id = options.id ?? randomBytes(9).toString('base64url');
  const username = `${expiresAt}:${id}`;
  return { username, credential: turnCredentialFor(secret, username), expiresAt };
}

export function turnCredentialFor(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

export interface IceConfigOptions {
  /** Static entries handed out as they are (`--ice-servers`). */
  iceServers?: IceServer[];
  /** `stun:` URLs (`--stun`). */
  stun?: string[];
  /** `turn:`/`turns:` URLs (`--turn`), which get per-client credentials. */
  turn?: string[];
  /** Shared with the TURN server (coturn `static-auth-secret`). */
  turnSecret?: string;
  /** Lifetime of minted credentials, seconds. */
  turnTtlSeconds?: number;
}

export const DEFAULT_TURN_TTL_SECONDS = 6 * 3600;

/** The ICE servers one client gets: the static list, the STUN URLs, the TURN URLs with fresh credentials. */
export function iceServersForClient(options: IceConfigOptions, nowMs = Date.now()): { iceServers: IceServer[]; expiresAt?: number } {
  const iceServers: IceServer[] = [...(options.iceServers ?? [])];
  if (options.stun?.length) iceServers.push({ urls: options.stun });
  let expiresAt: number | undefined;
  if (options.turn?.length && options.turnSecret) {
    const minted = mintTurnCredentials(options.turnSecret, options.turnTtlSeconds ?? DEFAULT_TURN_TTL_SECONDS, { nowMs });
    iceServers.push({ urls: options.turn, username: minted.username, credential: minted.credential });
    expiresAt = minted.expiresAt;
  }
  return { iceServers, expiresAt };
}

/** Checks the URLs given to `--stun`/`--turn`; returns a sentence for the first bad one. */
export function checkIceUrls(urls: string[], kind: 'stun' | 'turn'): string | undefined {
  const pattern = kind === 'stun' ? /^stuns?:[^\s@/]+$/ : /^turns?:[^\s@/]+(\?transport=(udp|tcp))?$/;
  const example = kind === 'stun' ? 'stun:turn.example.org:3478' : 'turn:turn.example.org:3478?transport=udp';
  for (const url of urls) {
    if (!pattern.test(url)) return `--${kind} "${url}" is not a ${kind.toUpperCase()} URL, e.g. ${example}`;
  }
  return undefined;
}
