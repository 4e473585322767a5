import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import "../../src/store/ioredis.js";
import { keepStringPrototypeFast } from "../../src/runtime/string-prototype.js";

// V8's own check of an object's property mode, compiled once natives syntax is on.
setFlagsFromString("--allow-natives-syntax");
const hasFastProperties = new Function("o", "return %HasFastProperties(o)") as (o: object) => boolean;

describe("String.prototype in a node that loaded ioredis", () => {
  it("is in fast-properties mode, though ioredis subclasses String", () => {
    expect(hasFastProperties(String.prototype)).toBe(true);
  });

  it("stays fast when another module subclasses String later", () => {
    class Tagged extends String {
      constructor(
        value: string,
        readonly tag: string,
      ) {
        super(value);
      }
    }
    expect(new Tagged("x", "t").tag).toBe("t");
    expect(hasFastProperties(String.prototype)).toBe(true);
    keepStringPrototypeFast();
    expect(hasFastProperties(String.prototype)).toBe(true);
  });
});
