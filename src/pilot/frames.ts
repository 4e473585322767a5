/**
 * Frames as the pilot builds them: bodies without the version the socket
 * negotiates, and frame ids unique for the pilot's life, so a resent report is a duplicate.
 */
import { randomUUID } from "node:crypto";
import type { PilotMessageInput } from "../protocol/messages.js";

/** `Omit` that keeps a union a union (one member per message type). */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * A frame the pilot sends (before schema defaults), without its version `v`:
 * the connection stamps the one its socket negotiated, so a report kept
 * across a reconnect goes out right on whichever version the next socket has.
 */
export type PilotFrame = OmitEach<PilotMessageInput, "v">;
/** A frame without its envelope (`v`, `id`), which `makeFrame` and the connection add. */
export type PilotFrameBody = OmitEach<PilotFrame, "id">;

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

export function makeFrame<B extends PilotFrameBody>(ids: FrameIds, body: B): B & { id: string } {
  return { ...body, id: ids.nextId() };
}
