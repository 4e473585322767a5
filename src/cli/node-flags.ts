/** What the Node running `panda` was started with: its command-line flags and NODE_OPTIONS. */

/** Whether `name` (`--max-semi-space-size`) was given, in either spelling V8 accepts (dashes or underscores). */
export function nodeFlagGiven(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
  name: string,
): boolean {
  return [...execArgv, ...(nodeOptions ?? "").split(/\s+/)]
    .map((flag) => flag.replaceAll("_", "-"))
    .some((flag) => flag === name || flag.startsWith(`${name}=`));
}
