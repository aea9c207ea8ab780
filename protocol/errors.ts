/**
 * Every failure that reaches a user carries a stable `ERR_*` code and a sentence that says what to
 * do next. Codes travel over the wire (data channel, signaling) so both ends can act on them.
 */
export const errorCodes = [
  'ERR_INVALID_JOB',
  'ERR_INVALID_FLAG',
  'ERR_BAD_MESSAGE',
  'ERR_PROTOCOL_VERSION',
  'ERR_UNAUTHENTICATED',
  'ERR_SIGNALING',
  'ERR_SIGNAL_TARGET',
  'ERR_NO_WORKER',
  'ERR_CONNECT_TIMEOUT',
  'ERR_PEER_LOST',
  'ERR_WORKER_FULL',
  'ERR_WORKER_STOPPING',
  'ERR_UNKNOWN_JOB',
  'ERR_JOB_ID_MISMATCH',
  'ERR_INPUT_NAME',
  'ERR_INPUT_MISSING',
  'ERR_OUTPUT_PATH',
  'ERR_HASH_MISMATCH',
  'ERR_TRANSFER',
  'ERR_TOO_LARGE',
  'ERR_IMAGE_NOT_FOUND',
  'ERR_IMAGE_PULL',
  'ERR_DOCKER',
  'ERR_CANCELLED',
  'ERR_JOB_TIMEOUT',
  'ERR_INTERNAL',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class PeerdockError extends Error {
  override readonly name = 'PeerdockError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Wraps anything thrown into a PeerdockError, keeping the code if it already had one. */
export function toPeerdockError(error: unknown, fallback: ErrorCode = 'ERR_INTERNAL'): PeerdockError {
  if (error instanceof PeerdockError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new PeerdockError(fallback, message, { cause: error });
}
