/** The subscription kind's global projections: a subscription is listed in the catalog when it is created. */
import type { GlobalProjections } from "../../runtime/kinds.js";
import { catalogQueues } from "../../store/index-names.js";
import { indexPut } from "../shared/global-effects.js";

export const subscriptionGlobalProjections: GlobalProjections = ({ id, before, atMs }) =>
  before ? [] : [indexPut(catalogQueues.subscriptions, id, atMs)];
