import { describe, expect, it } from "vitest";
import { IndexMirror } from "../../src/runtime/index-mirror.js";

const QUEUE = "queue/site/A";

/** `count` members of `shard`, scored so that the shards' members interleave in the index. */
function membersOf(shard: number, count: number) {
  return Array.from({ length: count }, (_, i) => ({ member: `job/${shard}-${i}`, score: i * 10 + shard }));
}

function mirrorOf(shards: number, perShard: number): IndexMirror {
  const mirror = new IndexMirror();
  for (let shard = 0; shard < shards; shard++)
    mirror.load(
      shard,
      new Map([[QUEUE, membersOf(shard, perShard)]]),
      new Map([["jobs/activated", perShard]]),
    );
  return mirror;
}

describe("the index mirror, dropping a shard", () => {
  it("forgets that shard's members and counters and keeps the others in order", () => {
    const mirror = mirrorOf(3, 4);
    mirror.drop(1);
    const members = mirror.range(QUEUE, 0, 100);
    expect(members.map((e) => e.member)).toEqual([
      "job/0-0",
      "job/2-0",
      "job/0-1",
      "job/2-1",
      "job/0-2",
      "job/2-2",
      "job/0-3",
      "job/2-3",
    ]);
    expect(mirror.size(QUEUE)).toBe(8);
    expect(mirror.score(QUEUE, "job/1-2")).toBeNull();
    expect(mirror.rank(QUEUE, "job/2-1")).toBe(3);
    expect(mirror.counter("jobs/activated")).toBe(8);
    expect(mirror.loadedShards).toBe(2);
  });

  it("leaves nothing once every shard is dropped, and takes a shard back whole", () => {
    const mirror = mirrorOf(4, 50);
    for (let shard = 0; shard < 4; shard++) mirror.drop(shard);
    expect(mirror.size(QUEUE)).toBe(0);
    expect(mirror.keys()).toEqual([]);
    expect(mirror.counter("jobs/activated")).toBe(0);
    mirror.load(2, new Map([[QUEUE, membersOf(2, 3)]]), new Map());
    expect(mirror.range(QUEUE, 0, 10).map((e) => e.member)).toEqual(["job/2-0", "job/2-1", "job/2-2"]);
  });

  it("drops every other shard of a big index and keeps the rest in order", () => {
    const mirror = mirrorOf(64, 3_000);
    for (let shard = 0; shard < 64; shard += 2) mirror.drop(shard);
    expect(mirror.size(QUEUE)).toBe(32 * 3_000);
    const scores: number[] = [];
    let odd = true;
    mirror.scan(QUEUE, (member, score) => {
      odd &&= Number(member.slice(4, member.indexOf("-"))) % 2 === 1;
      scores.push(score);
      return true;
    });
    expect(scores).toEqual([...scores].sort((a, b) => a - b));
    expect(odd).toBe(true);
  });

  it("holds a member loaded again, or twice in one load, once, at its last score", () => {
    const mirror = mirrorOf(2, 3);
    mirror.load(
      1,
      new Map([
        [
          QUEUE,
          [
            { member: "job/0-1", score: 1_000 },
            { member: "job/1-9", score: 5 },
            { member: "job/1-9", score: 7 },
          ],
        ],
      ]),
      new Map(),
    );
    expect(mirror.range(QUEUE, 0, 10)).toEqual([
      { member: "job/0-0", score: 0 },
      { member: "job/1-9", score: 7 },
      { member: "job/0-2", score: 20 },
      { member: "job/0-1", score: 1_000 },
    ]);
    expect(mirror.rank(QUEUE, "job/0-1")).toBe(3);
  });

  it("applies drops made one after another before a read, and a commit or a load made in between", () => {
    const mirror = mirrorOf(4, 3);
    mirror.drop(0);
    mirror.drop(3);
    mirror.apply(1, [{ key: QUEUE, member: "job/1-new", score: 15 }], [{ name: "jobs/activated", delta: 1 }]);
    mirror.drop(2);
    mirror.load(
      2,
      new Map([[QUEUE, [{ member: "job/2-back", score: 2 }]]]),
      new Map([["jobs/activated", 1]]),
    );
    expect(mirror.range(QUEUE, 0, 10).map((e) => e.member)).toEqual([
      "job/1-0",
      "job/2-back",
      "job/1-1",
      "job/1-new",
      "job/1-2",
    ]);
    expect(mirror.counter("jobs/activated")).toBe(3 + 1 + 1);
    expect(mirror.loadedShards).toBe(2);
  });
});
