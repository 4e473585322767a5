// Submission rates before and while a queue is throttled, from the pilot-job records' submission times, for the test's printout.

/** Submissions per minute over `[fromMs, toMs]`. */
function perMin(count: number, fromMs: number, toMs: number): number {
  return (count / Math.max(1, toMs - fromMs)) * 60_000;
}

export function describeRates(submittedAtMs: number[], throttledAtMs: number, nowMs: number): string {
  const before = submittedAtMs.filter((t) => t <= throttledAtMs);
  const after = submittedAtMs.filter((t) => t > throttledAtMs);
  const gaps = after.slice(1).map((t, i) => ((t - after[i]!) / 1000).toFixed(1));
  const firstMs = before[0] ?? throttledAtMs;
  return (
    `before throttling: ${before.length} submissions in ${((throttledAtMs - firstMs) / 1000).toFixed(1)} s ` +
    `(${perMin(before.length, firstMs, throttledAtMs).toFixed(0)}/min); ` +
    `throttled: ${after.length} in ${((nowMs - throttledAtMs) / 1000).toFixed(1)} s ` +
    `(${perMin(after.length, throttledAtMs, nowMs).toFixed(0)}/min)${gaps.length > 0 ? `, gaps ${gaps.join(", ")} s` : ""}`
  );
}
