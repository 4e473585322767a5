/**
 * The `panda` command (bin/panda.js runs the compiled copy). Exiting
 * explicitly: an idle keep-alive socket must not hold a finished command open.
 */
import { runCli } from "./program.js";

process.exit(await runCli(process.argv.slice(2)));
