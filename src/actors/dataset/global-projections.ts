/** The dataset kind's global projections: a dataset is listed in the catalog when it is created. */
import type { GlobalProjections } from "../../runtime/kinds.js";
import { catalogQueues } from "../../store/index-names.js";
import { indexPut } from "../shared/global-effects.js";

/** Dispatch datasets (`dis.*`, one per assigned job) are internal: not in the catalog. */
export const datasetGlobalProjections: GlobalProjections = ({ id, before, atMs }) =>
  before || id.startsWith("dis.") ? [] : [indexPut(catalogQueues.datasets, id, atMs)];
