import { randomUUID } from "node:crypto";
import { type PilotMessageInput, PROTOCOL_VERSION } from "../protocol/messages.js";

/** `Omit` that keeps a union a union (one member per message type). */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A frame the pilot sends, as it goes on the wire (before schema defaults). */
export type PilotFrame = PilotMessageInput;
/** A frame without its envelope (`v`, `id`), which `makeFrame` adds. */
export type PilotFrameBody = OmitEach<PilotFrame, "v" | "id">;

/** The reports the server acknowledges and the pilot therefore keeps until it does. */
export type ReportFrame = Extract<PilotFrame, { type: "job.status" | "job.ended" }>;
export type ReportBody = OmitEach<ReportFrame, "v" | "id">;

/**
 * Frame ids unique over the pilot's whole life, across reconnects: a report
 * resent after a dropped socket keeps its id (so the server can tell a
 * duplicate), and no new frame ever takes an old one's.
 */
export class FrameIds {
  private readonly prefix = randomUUID().slice(0, 8);
  private next = 1;

  nextId(): string {
    return `${this.prefix}-${this.next++}`;
  }
}

export function makeFrame<B extends PilotFrameBody>(ids: FrameIds, body: B): B & { v: 1; id: string } {
  return { ...body, v: PROTOCOL_VERSION, id: ids.nextId() };
}
