import { describe, expect, it } from "vitest";
import {
  completeDatasetInput,
  type DatasetInput,
  datasetInputSchema,
} from "../../src/actors/dataset/schema.js";
import {
  completeSubscriptionInput,
  type SubscriptionInput,
  subscriptionInputSchema,
} from "../../src/actors/subscription/schema.js";

const file = (lfn: string) => ({ lfn, sizeBytes: 100, checksum: `ad:${lfn}` });

const datasets: [string, DatasetInput][] = [
  ["minimal", { name: "user.alice.data" }],
  [
    "a job's dispatch dataset",
    {
      name: "panda.dis.t1-0.1@BNL",
      state: "frozen",
      files: [file("a"), file("b")],
      replicas: { CERN: ["a"] },
      atMs: 1_000,
    },
  ],
  ["a task's sub-destination dataset", { name: "t1.out.BNL", parent: "t1.out", state: "open", atMs: 0 }],
  ["nulls given", { name: "d", parent: null }],
];

const subscriptions: [string, SubscriptionInput][] = [
  ["minimal", { dataset: "mc.in", site: "BNL", files: [{ ...file("a"), sourceSite: "CERN" }] }],
  [
    "a job's dispatch subscription",
    {
      id: "panda.dis.t1-0.1@BNL",
      dataset: "panda.dis.t1-0.1@BNL",
      site: "BNL",
      files: [
        { ...file("a"), sourceSite: "CERN" },
        { ...file("b"), sourceSite: "FZK" },
      ],
      requester: { kind: "job", id: "t1-0.1" },
      purpose: "dispatch",
      maxFileAttempts: 3,
      atMs: 5,
    },
  ],
  ["a replication with nothing to move", { dataset: "mc.in", site: "BNL", files: [], requester: null }],
];

describe("inputs of creates completed without a second parse", () => {
  it.each(datasets)("a dataset's equals the schema's parse: %s", (_name, input) => {
    expect(completeDatasetInput(input)).toEqual(datasetInputSchema.parse(input));
  });

  it.each(subscriptions)("a subscription's equals the schema's parse: %s", (_name, input) => {
    expect(completeSubscriptionInput(input)).toEqual(subscriptionInputSchema.parse(input));
  });
});
