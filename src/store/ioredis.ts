/**
 * ioredis as the node loads it: every module that needs its classes at run
 * time imports them from here, so that loading it is followed by putting
 * `String.prototype` back in fast mode (see `keepStringPrototypeFast`).
 */
import { keepStringPrototypeFast } from "../runtime/string-prototype.js";

export { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from "ioredis";

keepStringPrototypeFast();
