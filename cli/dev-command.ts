import meow from 'meow';
import { resolve } from 'node:path';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { encodeHashValue } from '../protocol/hash-params.js';
import { generateQueue } from '../protocol/queue-keys.js';
import { startSignalingServer } from '../signaling/server.js';
import { DockerRunner } from '../worker/docker-runner.js';
import { PeerdockWorker } from '../worker/worker.js';
import { defaultDataDir, fromEnv, portFlag, positiveInteger } from './common.js';
import { frameDir } from './frame-dir.js';

const help = `
  Usage
    $ peerdock dev [options]        (what "npm start" runs)

  Everything on this machine in one process: the signaling server on 127.0.0.1, the frame, and a
  worker on a fresh random queue using the local Docker engine. Prints the URL to open and a
  command line that runs a job from the terminal.

  Options
    --port <n>        Signaling port (default 8080, or a free one if taken; 0: any free one) PEERDOCK_PORT
    --cores <n>       Worker slots (default 2)                                PEERDOCK_CORES
    --queue <name>    Use this queue instead of a random one                  PEERDOCK_QUEUE
    --image <image>   The example job's image (default: the first of alpine:3.20, busybox,
                      peerdock-test/busybox found locally)
`;

const EXAMPLE_IMAGES = ['alpine:3.20', 'busybox:latest', 'peerdock-test/busybox:latest'];

export async function run(argv: string[]): Promise<void> {
  const cli = meow(help, {
    importMeta: import.meta,
    description: false,
    argv,
    allowUnknownFlags: false,
    flags: { port: { type: 'string' }, cores: { type: 'string' }, queue: { type: 'string' }, image: { type: 'string' } },
  });
  const staticDir = await frameDir();
  const options = { host: '127.0.0.1', staticDir };
  const requestedPort = portFlag(cli.flags.port ?? fromEnv('PORT'), 8080);
  const server = await startSignalingServer({ ...options, port: requestedPort }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EADDRINUSE') throw error;
    return startSignalingServer({ ...options, port: 0 });
  });
  const queue = cli.flags.queue ?? fromEnv('QUEUE') ?? generateQueue();
  const docker = new DockerRunner();
  const worker = new PeerdockWorker({
    signalUrl: server.url,
    queue,
    workerId: 'dev-worker',
    cores: positiveInteger(cli.flags.cores ?? fromEnv('CORES'), 'cores', 2),
    dataDir: resolve(defaultDataDir('dev-worker')),
    wrtc: nodeWrtc(),
    docker,
    report: (line) => process.stdout.write(`worker: ${line}\n`),
  });
  await worker.start();
  const image = cli.flags.image ?? (await firstLocalImage(docker)) ?? 'alpine:3.20';
  const job = { image, command: 'sh -c "echo hello from $(hostname); date > /outputs/date.txt"' };
  const frameUrl = `${server.url}/#?queue=${encodeHashValue(queue)}&job=${encodeHashValue(job)}`;
  process.stdout.write(
    [
      '',
      `peerdock is running: signaling on ${server.url}, a worker with the local Docker engine.`,
      '',
      staticDir ? `  Open the frame:  ${frameUrl}` : '  (the frame is not built: run "npm run build" to serve it)',
      '',
      '  Or run a job from another terminal:',
      `    npx peerdock job run ${queue} --signal ${server.url} --image ${image} \\`,
      `      --command 'sh -c "echo hello; date > /outputs/date.txt"' --outputs ./out`,
      '',
      '  Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  const shutdown = () => void Promise.all([worker.stop(), server.close()]).then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

async function firstLocalImage(docker: DockerRunner): Promise<string | undefined> {
  for (const image of EXAMPLE_IMAGES) if (await docker.hasImage(image)) return image;
  return undefined;
}
