// The names of the catalog indexes: kept by the server's catalog feed, read by the query planners.

/** Indexes the API searches, kept from committed transitions. */
export const catalogQueues = {
  /** Dataset names by creation time (dispatch datasets `dis.*` left out: one per assigned job, internal). */
  datasets: "catalog:datasets",
  /** Subscription ids by creation time. */
  subscriptions: "catalog:subscriptions",
};
