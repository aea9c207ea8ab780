import meow from 'meow';
import { PeerdockError } from '../protocol/errors.js';
import { generateQueue } from '../protocol/queue-keys.js';

const help = `
  Usage
    $ peerdock queue new

  Prints a new random queue name. Anyone who knows a queue can run jobs on its workers: treat
  it like a password.
`;

export async function run(argv: string[]): Promise<void> {
  const cli = meow(help, { importMeta: import.meta, description: false, argv, allowUnknownFlags: false });
  if (cli.input[0] !== 'new') throw new PeerdockError('ERR_INVALID_FLAG', 'usage: peerdock queue new');
  process.stdout.write(`${generateQueue()}\n`);
}
