/**
 * Runs at most `slots` tasks at once; the rest wait in submission order.
 */
export class SlotScheduler {
  private running = 0;
  private readonly waiting: Array<{ id: string; start: () => void }> = [];

  constructor(
    readonly slots: number,
    private readonly onChange: () => void = () => {},
  ) {}

  get free(): number {
    return Math.max(0, this.slots - this.running);
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** 1-based place in the line, or undefined when not waiting. */
  position(id: string): number | undefined {
    const index = this.waiting.findIndex((entry) => entry.id === id);
    return index === -1 ? undefined : index + 1;
  }

  /** Resolves with the task's own result once it has had its slot. */
  schedule<T>(id: string, task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.running++;
        this.onChange();
        task()
          .then(resolve, reject)
          .finally(() => {
            this.running--;
            this.next();
          });
      };
      if (this.running < this.slots) start();
      else {
        this.waiting.push({ id, start });
        this.onChange();
      }
    });
  }

  /**
   * Runs a task at once, whatever the free slots: for containers a restarted worker adopts,
   * which are running already.
   */
  occupy<T>(task: () => Promise<T>): Promise<T> {
    this.running++;
    this.onChange();
    return task().finally(() => {
      this.running--;
      this.next();
    });
  }

  /** Takes a waiting task out of the line; false if it already started or is unknown. */
  remove(id: string): boolean {
    const index = this.waiting.findIndex((entry) => entry.id === id);
    if (index === -1) return false;
    this.waiting.splice(index, 1);
    this.onChange();
    return true;
  }

  private next(): void {
    const entry = this.waiting.shift();
    if (entry) entry.start();
    else this.onChange();
  }
}
