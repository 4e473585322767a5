import { runSimCli } from "./cli.js";

/** `tsx src/sim/main.ts SCENARIO ...`: the simulator on its own, until `panda sim` is wired. */
process.exitCode = await runSimCli(process.argv.slice(2));
