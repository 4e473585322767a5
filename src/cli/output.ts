/** How `panda` prints: human tables by default, the server's JSON as is with `--json`. */

export type Cell = string | number | boolean | null | undefined;

export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

/** Pretty JSON, for `--json` and for contexts in `panda inspect`. */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

export function printJson(value: unknown): void {
  print(formatJson(value));
}

function cellText(cell: Cell): string {
  return cell === null || cell === undefined ? "-" : String(cell);
}

/** A plain text table: upper-case headers, columns padded to their widest cell, no trailing spaces. */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const texts = rows.map((row) => headers.map((_, column) => cellText(row[column])));
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...texts.map((row) => row[column]!.length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd();
  return [line(headers.map((header) => header.toUpperCase())), ...texts.map(line)].join("\n");
}

/** Milliseconds since the epoch as ISO 8601 (UTC), or "-" when there is no time. */
export function isoTime(epochMs: number | null | undefined): string {
  return epochMs === null || epochMs === undefined ? "-" : new Date(epochMs).toISOString();
}

/** `HH:MM:SS` in local time, the prefix of `panda up`'s progress lines. */
export function clockTime(date: Date = new Date()): string {
  return date.toTimeString().slice(0, 8);
}

/** Indents every line of a block, for nesting pretty JSON under a heading. */
export function indent(text: string, spaces = 2): string {
  const pad = " ".repeat(spaces);
  return text
    .split("\n")
    .map((line) => (line === "" ? line : pad + line))
    .join("\n");
}

/** `--json` prints the answer as the server sent it; otherwise the human rendering. */
export function printAnswer(json: boolean | undefined, answer: unknown, human: () => string): void {
  if (json) printJson(answer);
  else print(human());
}
