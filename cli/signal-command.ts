import meow from 'meow';
import { startSignalingServer } from '../signaling/server.js';
import { frameDir } from './frame-dir.js';
import { fromEnv, iceServersFlag, positiveInteger } from './common.js';

const help = `
  Usage
    $ peerdock signal [options]

  Runs the signaling server: it introduces browsers and workers of the same queue and relays
  their sealed signals. It never sees a queue name, a job or a file. It also serves the frame
  (the <peerdock-job> page) at /, and GET /healthz for load balancers.

  Options
    --port <n>            Port to listen on (default 8080; 0 picks a free one)   PEERDOCK_PORT
    --host <address>      Address to bind (default 127.0.0.1; 0.0.0.0 for all)  PEERDOCK_HOST
    --ice-servers <json>  ICE servers handed to every peer, e.g.                PEERDOCK_ICE_SERVERS
                          '[{"urls":"stun:stun.example.org:3478"}]'
                          (default: none, which connects peers on the same network only)

  Examples
    $ peerdock signal --port 8080 --host 127.0.0.1
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
    },
  });
  const portText = cli.flags.port ?? fromEnv('PORT');
  const port = portText === '0' ? 0 : positiveInteger(portText, 'port', 8080);
  const server = await startSignalingServer({
    port,
    host: cli.flags.host ?? fromEnv('HOST') ?? '127.0.0.1',
    iceServers: iceServersFlag(cli.flags.iceServers ?? fromEnv('ICE_SERVERS')),
    staticDir: await frameDir(),
  });
  process.stdout.write(`peerdock signaling server listening on ${server.url}\n`);
  const shutdown = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
