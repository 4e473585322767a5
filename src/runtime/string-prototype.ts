/**
 * Keeps `String.prototype` in V8's fast-properties mode.
 *
 * Defining a subclass of `String` (ioredis's RESP3 decoder defines
 * `VerbatimString extends String` when it loads) makes V8 set up
 * `String.prototype` as a prototype, which puts its properties in dictionary
 * mode. V8 puts a prototype back in fast mode the first time a property load
 * on an object (not a primitive) finds it on the prototype chain; string
 * primitives never trigger that, so in a node that had loaded ioredis every
 * string method call (`charCodeAt` in the msgpack encoders, `startsWith`,
 * `slice`, `indexOf`) went through a generic lookup instead of being inlined:
 * encoding a history entry took three times as long.
 *
 * A few loads through a `String` wrapper object do what the primitives
 * cannot. Once V8 marks the prototype as one that should be fast, a later
 * subclass does not undo it, so a call before or after such a module loads
 * is enough; calling it again is harmless.
 */
const loadThroughWrapper = (wrapper: object) => (wrapper as { charCodeAt?: unknown }).charCodeAt;

/** Loads enough for V8 to give the function feedback: only an inline cache's miss makes prototypes fast. */
const LOADS = 1000;

export function keepStringPrototypeFast(): void {
  // A wrapper object, not a primitive: the point of it.
  const wrapper = new String("");
  for (let i = 0; i < LOADS; i++) loadThroughWrapper(wrapper);
}
