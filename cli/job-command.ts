import { PeerdockError } from '../protocol/errors.js';

const subcommands: Record<string, () => Promise<{ run(argv: string[]): Promise<void> }>> = {
  run: () => import('./job-run-command.js'),
  attach: () => import('./job-attach-command.js'),
  cancel: () => import('./job-cancel-command.js'),
};

/** `peerdock job run|attach|cancel …` */
export async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const load = name ? subcommands[name] : undefined;
  if (!load) {
    throw new PeerdockError('ERR_INVALID_FLAG', `usage: peerdock job <run|attach|cancel> … (see "peerdock job run --help")`);
  }
  await (await load()).run(rest);
}
