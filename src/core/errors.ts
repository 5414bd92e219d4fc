/** A failure the scheduler may retry (a flaky server, a busy resource); any other error is permanent. */
export class TransientError extends Error {
  readonly transient = true;
}

/** A failure caused by the user's data or setup, reported as is (no stack trace): a missing file, a bad record. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}
