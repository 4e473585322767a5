/** The pilot gateway's public surface: what a server node wires in. */
export type { ServerMessageInput } from "./frames.js";
export { PilotGateway } from "./gateway.js";
export {
  type GatewayHandlers,
  GatewayRefusal,
  type PilotHello,
  type PilotPrincipal,
  type PilotReport,
  type PilotSession,
  type WelcomeJob,
} from "./handlers.js";
export { type GatewayLimits, type GatewayOptions, gatewayLimitsSchema } from "./options.js";
export { issueResumeToken, verifyResumeToken } from "./resume-token.js";
