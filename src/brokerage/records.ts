/** Safe reads and copies of records keyed by names from outside (no prototype keys). */
/*
 * Site, user and group names come from outside; read and write records keyed
 * by them without letting "constructor" or "__proto__" reach Object.prototype.
 */

export function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** A copy with no prototype, so assigning any key creates a plain own property. */
export function prototypeFreeCopy<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.assign(Object.create(null) as Record<string, T>, record);
}
