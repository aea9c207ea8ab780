import { PeerdockError } from './errors.js';

/**
 * Splits a command line into argv the way a POSIX shell would for quoting only: single quotes are
 * literal, double quotes allow `\"`, `\\`, `\$` and `` \` `` escapes, a backslash outside quotes
 * escapes the next character. No expansion, no operators: `sh -c "a > b"` is how a user asks for
 * a shell, exactly as with `docker run`.
 */
export function splitShellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (char === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw unterminated(line, 'single');
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (char === '"') {
      inWord = true;
      let closed = false;
      for (i++; i < line.length; i++) {
        const inner = line[i]!;
        if (inner === '"') {
          closed = true;
          break;
        }
        if (inner === '\\' && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1]!)) {
          i++;
          if (line[i] !== '\n') word += line[i];
        } else {
          word += inner;
        }
      }
      if (!closed) throw unterminated(line, 'double');
    } else if (char === '\\') {
      if (i + 1 < line.length) {
        i++;
        // A backslash-newline is a line continuation: it vanishes and joins nothing.
        if (line[i] === '\n') continue;
        word += line[i];
      }
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

function unterminated(line: string, kind: string): PeerdockError {
  return new PeerdockError('ERR_INVALID_JOB', `command has an unterminated ${kind} quote: ${line}`);
}
