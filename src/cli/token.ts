/** `panda token`: creates, lists and revokes API and pilot tokens; `whoami` names the configured one. */
import { type Command, Option } from "commander";
import { durationSchema } from "../sim/units.js";
import type { TokenRow } from "./client.js";
import { usageError } from "./errors.js";
import { addConnectionOptions, addJsonOption, type ConnectionOptions, clientFor } from "./options.js";
import { isoTime, printAnswer, renderTable } from "./output.js";

interface CreateFlags extends ConnectionOptions {
  role?: string;
  user?: string;
  site?: string;
  ttl?: string;
  json?: boolean;
}

/** `--ttl 30d` in whole seconds; a usage error names the flag. */
function ttlSecOf(text: string): number {
  const parsed = durationSchema.safeParse(text);
  if (!parsed.success || parsed.data < 1000)
    throw usageError(
      `--ttl: ${parsed.success ? "must be at least 1s" : (parsed.error.issues[0]?.message ?? "bad duration")} (e.g. 12h, 30d)`,
    );
  return Math.floor(parsed.data / 1000);
}

export function renderTokens(tokens: readonly TokenRow[]): string {
  return renderTable(
    ["token id", "kind", "user", "role", "site", "source", "created", "by", "expires"],
    tokens.map((t) => [
      t.tokenId,
      t.principal.kind,
      t.principal.user,
      t.principal.role,
      t.principal.site,
      t.source,
      isoTime(t.createdAtMs),
      t.createdBy,
      t.expiresAtMs ? `${isoTime(t.expiresAtMs)}${t.expiresAtMs <= Date.now() ? " (EXPIRED)" : ""}` : "never",
    ]),
  );
}

export function registerTokenCommands(program: Command): void {
  const token = program.command("token").description("manage API and pilot tokens (admin token)");
  const create = token
    .command("create")
    .description("create a token; it is printed once and never again")
    .addOption(
      new Option("--role <role>", "a user token with this role").choices(["user", "operator", "admin"]),
    )
    .option("--user <name>", "the user the token is for (with --role)")
    .option("--site <site>", "a pilot token for this site (instead of --role/--user)")
    .option("--ttl <duration>", "the token expires after this long, e.g. 12h, 30d (default: never)");
  addJsonOption(addConnectionOptions(create)).action(async (flags: CreateFlags) => {
    if (flags.site && (flags.role || flags.user))
      throw usageError("give --site (a pilot token) or --role and --user, not both");
    if (!flags.site && !(flags.role && flags.user))
      throw usageError("give --role ROLE --user NAME for a user token, or --site SITE for a pilot token");
    const ttl = flags.ttl === undefined ? {} : { ttlSec: ttlSecOf(flags.ttl) };
    const spec = flags.site
      ? { kind: "pilot" as const, site: flags.site, ...ttl }
      : { kind: "user" as const, user: flags.user!, role: flags.role!, ...ttl };
    const answer = await clientFor(flags).createToken(spec);
    const expiry = answer.expiresAtMs ? `expires ${isoTime(answer.expiresAtMs)}` : "does not expire";
    printAnswer(
      flags.json,
      answer,
      () =>
        `${answer.token}\n(token id ${answer.tokenId}; ${expiry}; shown only now: keep it, e.g. in PANDA_TOKEN)`,
    );
  });
  const list = token.command("ls").description("list tokens by id (never the secrets)");
  addJsonOption(addConnectionOptions(list)).action(async (flags: ConnectionOptions & { json?: boolean }) => {
    const tokens = await clientFor(flags).listTokens();
    printAnswer(flags.json, { tokens }, () => renderTokens(tokens));
  });
  const revoke = token
    .command("revoke")
    .description("revoke a created token")
    .argument("<tokenId>", "from `panda token ls`");
  addJsonOption(addConnectionOptions(revoke)).action(
    async (tokenId: string, flags: ConnectionOptions & { json?: boolean }) => {
      const answer = await clientFor(flags).revokeToken(tokenId);
      printAnswer(flags.json, answer, () => `token ${tokenId} revoked`);
    },
  );
  const whoami = token.command("whoami").description("who the configured token is");
  addJsonOption(addConnectionOptions(whoami)).action(
    async (flags: ConnectionOptions & { json?: boolean }) => {
      const answer = await clientFor(flags).whoami();
      printAnswer(flags.json, answer, () =>
        answer.principal ? JSON.stringify(answer.principal) : "no token: anonymous (read-only)",
      );
    },
  );
}
