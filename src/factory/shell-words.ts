// Shell quoting, and the one command line that runs a command's copies side by side and keeps the first failure.

/** One word for `sh`, whatever it holds. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

/**
 * `sh` lines that run `argv` `copies` times at once and exit with the first
 * non-zero exit code (0 when all succeed). A SIGTERM to the job reaches every
 * copy: the trap forwards it, so pilots drain instead of being cut off.
 */
export function copiesScript(argv: readonly string[], copies: number): string {
  if (copies === 1) return `exec ${shellCommand(argv)}`;
  return [
    "pids=''",
    "trap 'kill -TERM $pids 2>/dev/null' TERM INT",
    `for copy in $(seq ${copies}); do ${shellCommand(argv)} & pids="$pids $!"; done`,
    "rc=0",
    'for pid in $pids; do wait "$pid"; code=$?; [ "$rc" -eq 0 ] && rc=$code; done',
    'exit "$rc"',
  ].join("\n");
}
