import { describe, expect, it } from "vitest";
import type { JobContext } from "../../src/actors/job/schema.js";
import type { BrokerageDecision, CandidateVerdict } from "../../src/brokerage/types.js";
import type { HistoryEntry } from "../../src/runtime/records.js";
import { brokerageLines, brokerageOf } from "../../src/server/why.js";

const components = {
  load: 1,
  assignedDamping: 1,
  locality: 1,
  failure: 1,
  pilotRate: 1,
  localBytes: 0,
  filesToMove: 0,
};
const scored = (site: string, score: number): CandidateVerdict => ({ site, score, components });
const excluded: CandidateVerdict = {
  site: "SITE-E",
  excluded: [{ filter: "memory", reason: "needs 9000 MB" }],
  components,
};

function explain(decision: BrokerageDecision) {
  const job = { brokerage: { tries: 1 } } as JobContext;
  const history = [{ event: { type: "brokered", decision } }] as unknown as HistoryEntry[];
  const brokerage = brokerageOf(job, history)!;
  return { brokerage, lines: brokerageLines(brokerage) };
}

describe("why: the brokerage decision in words", () => {
  it("says a winner came out of a weighted draw, with each candidate's weight and chance", () => {
    // SITE-A scored higher than SITE-B, yet SITE-B was drawn: never "SITE-A below SITE-B".
    const { brokerage, lines } = explain({
      jobId: "j",
      chosenSite: "SITE-B",
      candidates: [
        scored("SITE-A", 0.103),
        scored("SITE-B", 0.102),
        scored("SITE-C", 0.045),
        scored("SITE-D", 0.01),
        excluded,
      ],
      draw: {
        candidates: [
          { site: "SITE-A", weight: 0.103 },
          { site: "SITE-B", weight: 0.102 },
          { site: "SITE-C", weight: 0.045 },
        ],
      },
      filesToMove: [],
      bytesToMove: 0,
      atMs: 0,
    });
    expect(brokerage.pickedBy).toEqual({ kind: "draw", among: 3 });
    expect(brokerage.candidates.find((c) => c.site === "SITE-A")?.draw).toEqual({
      weight: 0.103,
      chance: 0.103 / 0.25,
    });
    expect(brokerage.candidates.find((c) => c.site === "SITE-D")?.draw).toBeNull();
    expect(lines).toEqual([
      "brokerage: SITE-B was drawn at random among 3 candidates, each weighted by its score",
      "  SITE-B: drawn (weight 0.102, chance 40.8% of being drawn)",
      "  SITE-A: not drawn (weight 0.103, chance 41.2% of being drawn)",
      "  SITE-C: not drawn (weight 0.0450, chance 18.0% of being drawn)",
      "  SITE-D: score 0.0100, below the 3 best sites drawn among (the lowest: SITE-C's 0.0450)",
      "  SITE-E: memory: needs 9000 MB",
    ]);
    expect(lines.join("\n")).not.toMatch(/below SITE-B/);
  });

  it("says the best score won when there was no draw", () => {
    const { brokerage, lines } = explain({
      jobId: "j",
      chosenSite: "SITE-A",
      candidates: [scored("SITE-A", 0.2), scored("SITE-B", 0.1)],
      filesToMove: [],
      bytesToMove: 0,
      atMs: 0,
    });
    expect(brokerage.pickedBy).toEqual({ kind: "bestScore" });
    expect(lines).toEqual([
      "brokerage chose SITE-A over 1 other site(s)",
      "  SITE-B: score 0.100 below SITE-A's 0.200",
    ]);
  });

  it("never calls a higher score 'below' in a decision recorded without its draw", () => {
    const { lines } = explain({
      jobId: "j",
      chosenSite: "SITE-B",
      candidates: [scored("SITE-A", 0.103), scored("SITE-B", 0.102)],
      filesToMove: [],
      bytesToMove: 0,
      atMs: 0,
    });
    expect(lines[1]).toBe(
      "  SITE-A: score 0.103 above SITE-B's 0.102, yet not drawn: brokerage drew among its best sites (their weights were not recorded)",
    );
  });
});
