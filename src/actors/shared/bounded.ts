/** The newest `max` entries of `list` after appending `entry`, oldest first. */
export function appendBounded<T>(list: readonly T[], entry: T, max: number): T[] {
  const next = [...list, entry];
  return next.length > max ? next.slice(next.length - max) : next;
}
