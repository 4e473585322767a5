// The entry of the self-contained pilot (dist/panda-pilot.cjs): `node panda-pilot.cjs --server URL --site S ...`.
import { runPilotCli } from "./options.js";

// CommonJS has no top-level await. Exiting explicitly: a payload's lingering handle must not keep a finished pilot alive.
void runPilotCli(process.argv.slice(2)).then((code) => process.exit(code));
