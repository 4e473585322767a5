/** A shell-style pattern (`mc11.*RDO*`, `?` for one character) as an anchored regular expression. */
export function wildcardRegExp(pattern: string): RegExp {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${escaped}$`);
}

/** The literal text before the first wildcard: a cheap pre-filter. */
export function literalPrefix(pattern: string): string {
  const stop = pattern.search(/[*?]/);
  return stop < 0 ? pattern : pattern.slice(0, stop);
}
