/**
 * A progress bar on stderr: redrawn in place on a terminal, a line every
 * tenth of the run otherwise (logs, CI). It shows simulated time, jobs
 * finished, the pace in simulated jobs per wall second and the wall time so far.
 */
import type { SimProgress } from "./harness.js";
import { formatDurationMs } from "./units.js";

const WIDTH = 30;

export class ProgressBar {
  private lastDecile = -1;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(progress: SimProgress): void {
    const fraction = Math.min(1, progress.simulatedMs / Math.max(1, progress.untilMs));
    const perSec = progress.wallMs > 0 ? (progress.finishedJobs * 1000) / progress.wallMs : 0;
    const text =
      `${progress.variant}: ${formatDurationMs(progress.simulatedMs)} / ${formatDurationMs(progress.untilMs)} simulated, ` +
      `${progress.finishedJobs.toLocaleString("en-US")} jobs finished, ${Math.round(perSec).toLocaleString("en-US")} jobs/s, ` +
      `wall ${formatDurationMs(Math.round(progress.wallMs))}`;
    if (this.stream.isTTY) {
      const filled = Math.round(fraction * WIDTH);
      const bar = `[${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%`;
      this.stream.write(
        `\r${bar} ${text}`
          .slice(0, (this.stream.columns || 120) - 1)
          .padEnd(Math.min(119, (this.stream.columns || 120) - 1)),
      );
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile > this.lastDecile) {
      this.lastDecile = decile;
      this.stream.write(`${String(decile * 10).padStart(3)}% ${text}\n`);
    }
  }

  /** Ends the line of a finished bar. */
  done(): void {
    if (this.stream.isTTY) this.stream.write("\n");
    this.lastDecile = -1;
  }
}
