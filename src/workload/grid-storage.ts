/**
 * The grid's storage elements: each site's by name, and the one users'
 * sandboxes are kept on. One object, because whatever tells a pilot where its
 * files are (the job spec) needs both.
 */
import type { StorageElement } from "../transfer/storage-element.js";

export class GridStorage extends Map<string, StorageElement> {
  /** Where sandboxes are kept, once the server node attached its sandbox store; null without one. */
  sandboxElement: StorageElement | null = null;
}

/** What a job spec reads of the grid's storage (a plain map of sites' elements will do). */
export type SpecStorage = ReadonlyMap<string, StorageElement> & {
  readonly sandboxElement?: StorageElement | null;
};
