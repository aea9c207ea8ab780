import meow from 'meow';
import { PeerdockError } from '../protocol/errors.js';
import { startSignalingServer } from '../signaling/server.js';
import { checkIceUrls, DEFAULT_TURN_TTL_SECONDS } from '../signaling/turn-credentials.js';
import { frameDir } from './frame-dir.js';
import { durationFlag, fromEnv, iceServersFlag, positiveInteger } from './common.js';

const help = `
  Usage
    $ peerdock signal [options]

  Runs the signaling server: it introduces browsers and workers of the same queue and relays
  their sealed signals. It never sees a queue name, a job or a file. It also serves the frame
  (the <peerdock-job> page) at /, and GET /healthz for load balancers.

  Options
    --port <n>            Port to listen on (default 8080; 0 picks a free one)   PEERDOCK_PORT
    --host <address>      Address to bind (default 127.0.0.1; 0.0.0.0 for all)  PEERDOCK_HOST
    --stun <url>          STUN server handed to every peer (repeatable), e.g.    PEERDOCK_STUN
                          stun:turn.example.org:3478                      (space-separated)
    --turn <url>          TURN server handed to every peer with credentials     PEERDOCK_TURN
                          minted for it (repeatable), e.g.               (space-separated)
                          turn:turn.example.org:3478?transport=udp
    --turn-secret <s>     The secret shared with the TURN server (coturn:       PEERDOCK_TURN_SECRET
                          use-auth-secret + static-auth-secret). Never sent to
                          a peer nor logged; prefer the env var (ps shows flags)
    --turn-ttl <d>        How long minted credentials stay valid (default 6h);  PEERDOCK_TURN_TTL
                          connected peers get fresh ones at half-life
    --ice-servers <json>  Further ICE servers handed out as they are, e.g.      PEERDOCK_ICE_SERVERS
                          '[{"urls":"stun:stun.example.org:3478"}]'

  Without any of these, peers connect only when they can reach each other directly (same
  network, or no NAT between them). Behind home routers STUN is usually enough; from a
  symmetric NAT (many mobile carriers and office firewalls) only TURN works.

  Examples
    $ peerdock signal --port 8080 --host 127.0.0.1
    $ PEERDOCK_TURN_SECRET=… peerdock signal --host 0.0.0.0 \\
        --stun stun:turn.example.org:3478 --turn turn:turn.example.org:3478
    (coturn: turnserver --use-auth-secret --static-auth-secret=… --realm=example.org
       --denied-peer-ip=10.0.0.0-10.255.255.255 --denied-peer-ip=172.16.0.0-172.31.255.255
       --denied-peer-ip=192.168.0.0-192.168.255.255   (without these, relays were measured to stall))
`;

export async function run(argv: string[]): Promise<void> {
  const cli = meow(help, {
    importMeta: import.meta,
    description: false,
    argv,
    allowUnknownFlags: false,
    flags: {
      port: { type: 'string' },
      host: { type: 'string' },
      iceServers: { type: 'string' },
      stun: { type: 'string', isMultiple: true },
      turn: { type: 'string', isMultiple: true },
      turnSecret: { type: 'string' },
      turnTtl: { type: 'string' },
    },
  });
  const listFlag = (values: string[] | undefined, env: string) => (values?.length ? values : (fromEnv(env)?.split(/[\s,]+/).filter(Boolean) ?? []));
  const stun = listFlag(cli.flags.stun, 'STUN');
  const turn = listFlag(cli.flags.turn, 'TURN');
  const turnSecret = cli.flags.turnSecret ?? fromEnv('TURN_SECRET');
  const badUrl = checkIceUrls(stun, 'stun') ?? checkIceUrls(turn, 'turn');
  if (badUrl) throw new PeerdockError('ERR_INVALID_FLAG', badUrl);
  if (turn.length > 0 && !turnSecret) {
    throw new PeerdockError('ERR_INVALID_FLAG', '--turn needs --turn-secret (or PEERDOCK_TURN_SECRET): the secret your TURN server was started with');
  }
  if (turnSecret && turn.length === 0) throw new PeerdockError('ERR_INVALID_FLAG', '--turn-secret is set but no --turn URL is');
  const turnTtlSeconds = durationFlag(cli.flags.turnTtl ?? fromEnv('TURN_TTL'), 'turn-ttl', `${DEFAULT_TURN_TTL_SECONDS}s`);
  const portText = cli.flags.port ?? fromEnv('PORT');
  const port = portText === '0' ? 0 : positiveInteger(portText, 'port', 8080);
  const server = await startSignalingServer({
    port,
    host: cli.flags.host ?? fromEnv('HOST') ?? '127.0.0.1',
    iceServers: iceServersFlag(cli.flags.iceServers ?? fromEnv('ICE_SERVERS')),
    stun,
    turn,
    turnSecret,
    turnTtlSeconds,
    staticDir: await frameDir(),
  });
  process.stdout.write(`peerdock signaling server listening on ${server.url}\n`);
  if (stun.length + turn.length > 0) {
    // URLs only: the secret stays out of every log.
    process.stdout.write(
      `ICE servers for peers: ${[...stun, ...turn].join(' ')}${turn.length ? ` (TURN credentials minted per peer, valid ${turnTtlSeconds}s)` : ''}\n`,
    );
  }
  const shutdown = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
