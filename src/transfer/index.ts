/** Storage elements, their HTTP face and the transfer agent: what the server and the tests import. */
export * from "./checksum.js";
export { DirectoryStorageElement } from "./directory-storage-element.js";
export * from "./http-client.js";
export * from "./storage-config.js";
export * from "./storage-element.js";
export * from "./storage-http.js";
export { listPrefixDirectory, RESERVED_TOP_DIRECTORY, storagePathSegments } from "./storage-path.js";
export * from "./transfer-agent.js";
export { XrootdStorageElement } from "./xrootd-storage-element.js";
