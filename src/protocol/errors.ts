/**
 * Wire error codes. A failed command gets `Err: <code>`, or `Err: <code>;<detail>` for
 * the codes that carry one. The codes of the original server keep their exact spelling,
 * including `wrong-numbers-arguments`. docs/PROTOCOL.md lists every code.
 */
export const ErrorCode = {
  NOT_LOGGED: 'not-logged',
  GROUP_NOT_SELECTED: 'group-non-selected',
  WRONG_ARGUMENT_COUNT: 'wrong-numbers-arguments',
  UNKNOWN_COMMAND: 'unknown-command',
  INVALID_CREDENTIALS: 'invalid-creds',
  UNKNOWN_GROUP: 'unknown-group',
  FORBIDDEN_GROUP: 'forbidden-group',
  UNKNOWN_QUEUE: 'unknown-queue',
  UNKNOWN_JOB: 'unknown-job',
  UNKNOWN_STATE: 'unknown-state',
  UNKNOWN_RECURRENT_JOB: 'unknown-recurrent-job',
  INVALID_CRON: 'invalid-cron',
  TEST_MODE_DISABLED: 'test-mode-disabled',
  DISPATCH_DISABLED: 'dispatch-disabled',
  FORBIDDEN: 'forbidden',
  // Codes added by this server.
  LEASE_EXPIRED: 'lease-expired',
  JOB_HELD: 'job-held',
  JOB_FINISHED: 'job-finished',
  WRONG_STATE: 'wrong-state',
  USER_LOCKED: 'user-locked',
  QUEUE_FULL: 'queue-full',
  INVALID_ARGUMENT: 'invalid-argument',
  INVALID_SYNTAX: 'invalid-syntax',
  INVALID_UTF8: 'invalid-utf8',
  LINE_TOO_LONG: 'line-too-long',
  REPLY_TOO_LARGE: 'reply-too-large',
  SERVER_BUSY: 'server-busy',
  GATEWAY_UNSUPPORTED: 'gateway-unsupported',
  INVALID_REQUEST: 'invalid-request',
  SHARD_UNAVAILABLE: 'shard-unavailable',
  STORAGE_UNAVAILABLE: 'storage-unavailable',
  INTERNAL_ERROR: 'internal-error',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Every code the server can send, for documentation checks. */
export const ALL_ERROR_CODES: readonly ErrorCodeValue[] = Object.values(ErrorCode);

/**
 * Formats an error reply line without its newline. A detail, when given, follows a `;`
 * and must not contain a newline.
 */
export function errorReply(code: ErrorCodeValue, detail?: string): string {
  if (detail === undefined || detail === '') {
    return `Err: ${code}`;
  }
  return `Err: ${code};${detail.replace(/[\r\n]+/g, ' ')}`;
}

/** A client-visible failure: `code` is the wire code and `detail` the text after `;`. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCodeValue,
    readonly detail?: string,
  ) {
    super(detail ? `${code}: ${detail}` : code);
  }

  toReply(): string {
    return errorReply(this.code, this.detail);
  }
}
