import meow from 'meow';
import { exitWithError } from './common.js';

const commands: Record<string, () => Promise<{ run(argv: string[]): Promise<void> }>> = {
  signal: () => import('./signal-command.js'),
  worker: () => import('./worker-command.js'),
  job: () => import('./job-command.js'),
  dev: () => import('./dev-command.js'),
  queue: () => import('./queue-command.js'),
};

const help = `
  Run any Docker image from a web page. Browsers and workers meet through a blind signaling
  server; job, files, logs and outputs go straight between them over WebRTC.

  Usage
    $ peerdock <command> [options]

  Commands
    dev                     Signaling, the frame and a local worker on a fresh queue, in one process
    signal                  Run the signaling server (also serves the frame)
    worker run <queue>      Lend this machine's Docker engine to a queue
    job run <queue>         Run a job on a worker of the queue, print its logs, save its outputs
    queue new               Print a new random queue name

  Run "peerdock <command> --help" for a command's options.

  Environment
    Every option can also be set as PEERDOCK_<OPTION>, e.g. PEERDOCK_SIGNAL=http://host:8080.
    DEBUG=peerdock:*        Verbose logs

  Examples
    $ peerdock dev
    $ peerdock worker run --cores=2 --signal http://127.0.0.1:8080 my-queue-6a1f0c
`;

const [name, ...rest] = process.argv.slice(2);
const load = name ? commands[name] : undefined;
if (load) {
  try {
    await (await load()).run(rest);
  } catch (error) {
    exitWithError(error);
  }
} else {
  const cli = meow(help, { importMeta: import.meta, description: false, allowUnknownFlags: false, argv: name ? [name, ...rest] : [] });
  if (name && !name.startsWith('-')) {
    process.stderr.write(`peerdock: ERR_INVALID_FLAG: unknown command "${name}"; commands: ${Object.keys(commands).join(', ')}\n`);
    process.exit(2);
  }
  cli.showHelp(name ? 0 : 2);
}
