// The pilot as a process of its own (`node --import tsx src/pilot/main.ts ...`, or dist/pilot/main.js).
// Exiting explicitly: a payload's lingering handle must not keep a finished pilot alive.
import { runPilotCli } from "./options.js";

process.exit(await runPilotCli(process.argv.slice(2)));
