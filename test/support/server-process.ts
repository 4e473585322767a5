/**
 * A server node in its own process, so a test can SIGKILL it. Options arrive
 * as JSON in PANDA_TEST_SERVER_OPTIONS; the URL goes back over IPC.
 */
import { startServerNode } from "../../src/server/server.js";

const node = await startServerNode(JSON.parse(process.env.PANDA_TEST_SERVER_OPTIONS ?? "{}"));
process.send?.({ url: node.url });
process.on("disconnect", () => {
  void node.close().then(() => process.exit(0));
});
