/**
 * Index and counter names built once per distinct parts, then handed out as
 * the same string. A name is a key of several maps on a commit's way (the
 * store's counters, the index mirror, a projection's diff); built afresh at
 * each transition, each of them hashed and compared it again. A level is
 * dropped whole past `MAX_PARTS` entries (pilot ids never stop coming), so a
 * cache holds a bounded set. Fixed arities: a rest parameter would allocate
 * the array this is here to spare.
 */
const MAX_PARTS = 10_000;

function bounded<V>(map: Map<string, V>, key: string, value: V): V {
  if (map.size >= MAX_PARTS) map.clear();
  map.set(key, value);
  return value;
}

/** Names of one part. */
export function cachedName1<A extends string>(build: (a: A) => string): (a: A) => string {
  const names = new Map<string, string>();
  return (a) => names.get(a) ?? bounded(names, a, build(a));
}

/** Names of two parts: a cache of one part per first part. */
export function cachedName2<A extends string, B extends string>(
  build: (a: A, b: B) => string,
): (a: A, b: B) => string {
  const byA = new Map<string, (b: B) => string>();
  return (a, b) =>
    (
      byA.get(a) ??
      bounded(
        byA,
        a,
        cachedName1((b: B) => build(a, b)),
      )
    )(b);
}

/** Names of three parts: a cache of two parts per first part. */
export function cachedName3<A extends string, B extends string, C extends string>(
  build: (a: A, b: B, c: C) => string,
): (a: A, b: B, c: C) => string {
  const byA = new Map<string, (b: B, c: C) => string>();
  return (a, b, c) =>
    (
      byA.get(a) ??
      bounded(
        byA,
        a,
        cachedName2((b: B, c: C) => build(a, b, c)),
      )
    )(b, c);
}
