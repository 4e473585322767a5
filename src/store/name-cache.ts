/**
 * Index and counter names built once per distinct parts, then handed out as
 * the same string. A name is a key of several maps on a commit's way (the
 * store's counters, the index mirror, a projection's diff); built afresh at
 * each transition, each of them hashed and compared it again. The first
 * level is dropped whole past `MAX_FIRST_PARTS` entries (pilot ids never stop
 * coming), so a cache holds a bounded set. Fixed arities: a rest parameter
 * would allocate the array this is here to spare.
 */
const MAX_FIRST_PARTS = 10_000;

function bounded<V>(map: Map<string, V>, key: string, value: V): V {
  if (map.size >= MAX_FIRST_PARTS) map.clear();
  map.set(key, value);
  return value;
}

/** Names of one part. */
export function cachedName1(build: (a: string) => string): (a: string) => string {
  const names = new Map<string, string>();
  return (a) => names.get(a) ?? bounded(names, a, build(a));
}

/** Names of two parts. */
export function cachedName2(build: (a: string, b: string) => string): (a: string, b: string) => string {
  const names = new Map<string, Map<string, string>>();
  return (a, b) => {
    const byB = names.get(a) ?? bounded(names, a, new Map<string, string>());
    let name = byB.get(b);
    if (name === undefined) {
      name = build(a, b);
      byB.set(b, name);
    }
    return name;
  };
}

/** Names of three parts. */
export function cachedName3(
  build: (a: string, b: string, c: string) => string,
): (a: string, b: string, c: string) => string {
  const names = new Map<string, Map<string, Map<string, string>>>();
  return (a, b, c) => {
    const byB = names.get(a) ?? bounded(names, a, new Map<string, Map<string, string>>());
    let byC = byB.get(b);
    if (!byC) {
      byC = new Map();
      byB.set(b, byC);
    }
    let name = byC.get(c);
    if (name === undefined) {
      name = build(a, b, c);
      byC.set(c, name);
    }
    return name;
  };
}
