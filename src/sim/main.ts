/** `tsx src/sim/main.ts SCENARIO ...`: the simulator as a process of its own, without the rest of the `panda` command. */
import { runSimCli } from "./cli.js";

process.exitCode = await runSimCli(process.argv.slice(2));
