/** What the Node running `panda` was started with: its command-line flags and NODE_OPTIONS. */

/**
 * The flag `name` (`--max-semi-space-size`) as it was given, in either
 * spelling V8 accepts (dashes or underscores); null when it was not.
 */
export function givenNodeFlag(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
  name: string,
): string | null {
  for (const flag of [...execArgv, ...(nodeOptions ?? "").split(/\s+/)]) {
    const spelled = flag.replaceAll("_", "-");
    if (spelled === name || spelled.startsWith(`${name}=`)) return flag;
  }
  return null;
}
