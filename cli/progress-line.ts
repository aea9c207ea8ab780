import { formatBytes } from '../protocol/format.js';

/**
 * Status for the person at the terminal: a redrawn line with a bar on a TTY; nothing otherwise
 * (unless verbose), so piped output stays the container's alone.
 */
export class ProgressLine {
  private drawn = false;
  private lastDraw = 0;
  private readonly started = new Map<string, number>();

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly verbose: boolean,
  ) {}

  private get tty(): boolean {
    return Boolean(this.stream.isTTY);
  }

  note(text: string): void {
    if (!this.tty && !this.verbose) return;
    this.clear();
    this.stream.write(`peerdock: ${text}\n`);
  }

  bar(label: string, done: number, total: number): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!this.started.has(label)) this.started.set(label, now);
    if (now - this.lastDraw < 100 && done < total) return;
    this.lastDraw = now;
    const seconds = Math.max(0.001, (now - this.started.get(label)!) / 1000);
    const width = 24;
    const ratio = total > 0 ? Math.min(1, done / total) : 0;
    const bar = '█'.repeat(Math.round(ratio * width)).padEnd(width, '░');
    const text = `${label} ${bar} ${formatBytes(done)}/${formatBytes(total)} ${formatBytes(done / seconds)}/s`;
    this.stream.write(`\r\x1b[2K${text.slice(0, (this.stream.columns ?? 100) - 1)}`);
    this.drawn = true;
  }

  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}
