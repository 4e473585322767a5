// `panda factory --config FILE`: the pilot factory as a long-running process; a bad configuration exits 2 naming the field.
import { type Command, Option } from "commander";
import { FactoryConfigError, loadFactoryConfig, readQueueToken } from "../factory/config.js";
import { PilotFactory } from "../factory/factory.js";
import { createJsonLogger, type LogLevel, logLevelSchema } from "../server/json-log.js";
import { CliError, EXIT } from "./errors.js";
import { print } from "./output.js";

interface FactoryFlags {
  config: string;
  check?: boolean;
  logLevel: LogLevel;
}

function loadOrExplain(path: string) {
  try {
    const config = loadFactoryConfig(path);
    for (const queue of config.queues) readQueueToken(config, queue);
    return config;
  } catch (err) {
    if (err instanceof FactoryConfigError) throw new CliError(EXIT.usage, err.message);
    throw err;
  }
}

export function registerFactoryCommand(program: Command): void {
  program
    .command("factory")
    .description("submit pilots to batch systems (Slurm, local) to cover the sites' demand; docs/factory.md")
    .requiredOption("--config <file>", "the factory's YAML configuration (queues, caps, tokens)")
    .option("--check", "validate the configuration and the token files, print the queues, exit")
    .addOption(
      new Option("--log-level <level>", "JSON log lines on stdout at or above this")
        .choices(logLevelSchema.options)
        .env("PANDA_LOG_LEVEL")
        .default("info"),
    )
    .action(async (flags: FactoryFlags) => {
      const config = loadOrExplain(flags.config);
      if (flags.check) {
        for (const q of config.queues)
          print(
            `${q.name}: ${q.batchSystem}${q.partition ? ` partition ${q.partition}` : ""} for ${q.site}, ` +
              `${q.pilotsPerJob} pilot(s) per job, maxQueued ${q.maxQueued}, maxRunning ${q.maxRunning}`,
          );
        return;
      }
      const log = createJsonLogger(flags.logLevel);
      const factory = new PilotFactory(config, { log });
      await factory.start().catch((err: unknown) => {
        throw new CliError(EXIT.failed, `the factory could not start: ${(err as Error).message}`);
      });
      log.info({ factory: config.name, queues: config.queues.map((q) => q.name) }, "factory running");
      await new Promise<void>((done) => {
        const stop = () => {
          log.info({ factory: config.name }, "stopping; batch jobs keep running and a restart adopts them");
          factory.stop().then(done, done);
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      log.flush();
    });
}
