import { describe, expect, it } from "vitest";
import type { JobContext } from "../../src/actors/job/schema.js";
import { broker } from "../../src/brokerage/broker.js";
import {
  type BrokerageDecision,
  type CandidateVerdict,
  resolveBrokerageConfig,
} from "../../src/brokerage/types.js";
import type { HistoryEntry } from "../../src/runtime/records.js";
import { brokerageLines, brokerageOf } from "../../src/server/why.js";
import { trimDecision } from "../../src/workload/decision-record.js";
import { job, NOW_MS, site } from "../brokerage/fixtures.js";

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

/** A decision as history holds it: of today's shape, or of an older one (a draw listing every site, nothing else). */
type RecordedDecision = Omit<BrokerageDecision, "draw"> & { draw?: unknown };

function explain(decision: RecordedDecision) {
  const job = { brokerage: { tries: 1 } } as JobContext;
  const history = [{ event: { type: "brokered", decision } }] as unknown as HistoryEntry[];
  const brokerage = brokerageOf(job, history)!;
  return { brokerage, lines: brokerageLines(brokerage) };
}

describe("why: the brokerage decision in words", () => {
  it("says a winner came out of a weighted draw, with each candidate's weight and chance (a draw recorded whole, as before)", () => {
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

  it("names how many sites were drawn among and each recorded candidate's exact chance, from a compact record", () => {
    // 300 sites of varied load, 20 of them offline: the draw is among the 280 eligible, 5 candidates are kept.
    const sites = Array.from({ length: 300 }, (_, i) =>
      site(`SITE-${String(i).padStart(3, "0")}`, {
        status: i % 15 === 7 ? "offline" : "online",
        stats: { running: (i * 37) % 101, queued: (i * 13) % 17 },
      }),
    );
    const whole = broker({
      job: job(),
      sites,
      nowMs: NOW_MS,
      random: 0.37,
      config: resolveBrokerageConfig({ randomTopCandidates: 1000 }),
    });
    const trimmed = trimDecision(whole, 5);
    expect(trimmed.candidates).toHaveLength(5);
    // The chosen site, the best three others, and the lowest of the draw: not 280 weights.
    expect(trimmed.draw?.candidates.length).toBeLessThanOrEqual(6);
    expect(trimmed.draw).toMatchObject({ among: 280, totalWeight: whole.draw!.totalWeight });
    expect(trimmed.draw!.candidates.at(-1)).toEqual(whole.draw!.candidates.at(-1));
    const weightSum = whole.draw!.candidates.reduce((sum, c) => sum + c.weight, 0);

    const { brokerage, lines } = explain(trimmed);
    const fromWhole = explain(whole).brokerage;
    expect(brokerage.pickedBy).toEqual({ kind: "draw", among: 280 });
    for (const candidate of brokerage.candidates) {
      const score = whole.candidates.find((c) => c.site === candidate.site)!.score!;
      expect(candidate.draw?.weight).toBe(score);
      expect(candidate.draw?.chance).toBeCloseTo(score / weightSum, 15);
      // Word for word what the whole record says about the same site.
      expect(candidate).toEqual(fromWhole.candidates.find((c) => c.site === candidate.site));
    }
    const chosen = trimmed.chosenSite!;
    expect(lines[0]).toBe(
      `brokerage: ${chosen} was drawn at random among 280 candidates, each weighted by its score`,
    );
    expect(lines[1]).toMatch(
      new RegExp(`^ {2}${chosen}: drawn \\(weight \\S+, chance \\d+\\.\\d% of being drawn\\)$`),
    );
    expect(lines.slice(2)).toHaveLength(4);
    for (const line of lines.slice(2))
      expect(line).toMatch(/^ {2}SITE-\d{3}: not drawn \(weight \S+, chance \d+\.\d% of being drawn\)$/);
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
