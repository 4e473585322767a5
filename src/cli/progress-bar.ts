/**
 * A one-line progress bar on stderr, redrawn in place, for long work (`ds get`,
 * `ds put`, `wait`). Only on a terminal: piped or captured stderr gets nothing,
 * so scripts and logs keep clean output; stdout is never touched.
 */
export class ProgressBar {
  private readonly enabled: boolean;
  private lastLength = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly width = 30,
  ) {
    this.enabled = stream.isTTY === true;
  }

  update(done: number, detail = ""): void {
    if (!this.enabled) return;
    const fraction = this.total === 0 ? 1 : Math.min(1, done / this.total);
    const filled = Math.round(fraction * this.width);
    const bar = `${"#".repeat(filled)}${".".repeat(this.width - filled)}`;
    const line = `${this.label} [${bar}] ${done}/${this.total}${detail ? ` ${detail}` : ""}`;
    this.stream.write(`\r${line.padEnd(this.lastLength)}`);
    this.lastLength = line.length;
  }

  /** Leaves the finished bar on its own line. */
  finish(): void {
    if (this.enabled && this.lastLength > 0) this.stream.write("\n");
    this.lastLength = 0;
  }
}

/** `1.5 MB`: sizes for people. */
export function humanBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
