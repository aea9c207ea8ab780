import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PeerdockError } from './errors.js';
import { splitShellWords } from './shell-words.js';

describe('splitShellWords', () => {
  test('splits on any run of whitespace and ignores leading and trailing space', () => {
    assert.deepEqual(splitShellWords('  ls   -la\t/tmp\n'), ['ls', '-la', '/tmp']);
    assert.deepEqual(splitShellWords(''), []);
    assert.deepEqual(splitShellWords(' \t '), []);
  });

  test('single quotes are literal', () => {
    assert.deepEqual(splitShellWords(`echo 'a  b' '$HOME' 'back\\slash' '"'`), ['echo', 'a  b', '$HOME', 'back\\slash', '"']);
  });

  test('double quotes keep spaces and allow \\" \\\\ \\$ \\` escapes only', () => {
    assert.deepEqual(splitShellWords(`echo "a  b" "say \\"hi\\"" "c:\\\\dir" "\\$x" "\\\`" "\\n"`), [
      'echo',
      'a  b',
      'say "hi"',
      'c:\\dir',
      '$x',
      '`',
      '\\n',
    ]);
    assert.deepEqual(splitShellWords(`"'single' inside"`), [`'single' inside`]);
  });

  test('a backslash outside quotes escapes the next character', () => {
    assert.deepEqual(splitShellWords('a\\ b c\\\\d \\"e\\\''), ['a b', 'c\\d', `"e'`]);
  });

  test('quoted and unquoted parts join into one word', () => {
    assert.deepEqual(splitShellWords(`--name="John Smith"x 'a'"b"c`), ['--name=John Smithx', 'abc']);
  });

  test('empty quotes are an empty argument', () => {
    assert.deepEqual(splitShellWords(`printf '' ""`), ['printf', '', '']);
  });

  test('operators and expansions are not interpreted', () => {
    assert.deepEqual(splitShellWords('echo $HOME > out.txt && ls *'), ['echo', '$HOME', '>', 'out.txt', '&&', 'ls', '*']);
    assert.deepEqual(splitShellWords(`sh -c "echo a > b"`), ['sh', '-c', 'echo a > b']);
  });

  test('an unterminated quote is an ERR_INVALID_JOB naming the kind of quote', () => {
    for (const [line, kind] of [
      [`echo 'abc`, 'single'],
      [`echo "abc`, 'double'],
      [`echo "abc\\"`, 'double'],
      [`'`, 'single'],
    ] as const) {
      assert.throws(
        () => splitShellWords(line),
        (error: unknown) =>
          error instanceof PeerdockError && error.code === 'ERR_INVALID_JOB' && error.message.includes(`unterminated ${kind} quote`),
        line,
      );
    }
  });
});
