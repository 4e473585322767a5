// The tests pick ports the way `panda up --redis-cluster` does: one module for both.
export { CLUSTER_BUS_PORT_OFFSET, freePort } from "../../src/cli/free-port.js";
