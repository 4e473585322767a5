/**
 * Runs every task deferred to the end of the current event-loop turn, once,
 * after the turn's I/O callbacks and their promise reactions: one
 * `setImmediate` for all of a gateway's sockets, rather than one each. A
 * socket defers to it the write of what it held back during the turn.
 */
export class EndOfTurn {
  private due: (() => void)[] = [];
  private scheduled = false;

  /** @param onError hears a task that threw; the other tasks still run. */
  constructor(private readonly onError: (err: unknown) => void) {}

  /** Runs `task` at the end of this turn; the caller defers a task once per turn. */
  defer(task: () => void): void {
    this.due.push(task);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    // Tasks deferred while these run belong to the next turn.
    const due = this.due;
    this.due = [];
    for (const task of due) {
      try {
        task();
      } catch (err) {
        this.onError(err);
      }
    }
  };
}
