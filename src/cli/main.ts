/**
 * The `panda` command line. Verbs arrive with the issues that build them; an
 * unknown verb is an error that names the verbs there are.
 */
const VERBS: Record<string, string> = {};

const [verb] = process.argv.slice(2);
if (!verb || !(verb in VERBS)) {
  const known = Object.keys(VERBS);
  console.error(
    verb
      ? `panda: unknown command '${verb}'${known.length > 0 ? ` (known: ${known.join(", ")})` : ""}`
      : "panda: no command given",
  );
  console.error(
    "panda: the grid (`panda up`) arrives with the pilot gateway; the durable runtime is ready (see README).",
  );
  process.exit(2);
}
