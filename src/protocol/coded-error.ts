/**
 * The shape every layer's failures share: a code to switch on, a message for
 * people, and details for the record. Each layer keeps its own subclass (and
 * its own code union), so `instanceof` still says where a failure came from.
 */
export class CodedError<Code extends string> extends Error {
  constructor(
    readonly code: Code,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** A failure answered over HTTP: the status beside the code (the API's own, or a storage server's). */
export class HttpStatusError extends CodedError<string> {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(code, message, details);
  }
}
