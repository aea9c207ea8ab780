import { z } from 'zod';
import { errorCodes } from './errors.js';
import { jobDefinitionSchema, jobIdSchema, relativeFilePathSchema, sha256HexSchema } from './job.js';
import { finalJobStateSchema, jobStateSchema } from './job-state.js';

/**
 * Control messages on the data channel, sent as JSON text. File bytes travel as binary frames
 * (see framing.ts) between a `file-start` and the receiver's `file-done`.
 */
export const PROTOCOL_VERSION = 1;

const streamIdSchema = z.number().int().nonnegative().max(0xffffffff);
const errorCodeSchema = z.enum(errorCodes);

export const outputFileSchema = z.strictObject({
  path: relativeFilePathSchema,
  size: z.number().int().nonnegative(),
  sha256: sha256HexSchema,
});
export type OutputFile = z.infer<typeof outputFileSchema>;

export const jobResultSchema = z.strictObject({
  jobId: jobIdSchema,
  state: finalJobStateSchema,
  exitCode: z.number().int().nullable(),
  error: z.strictObject({ code: errorCodeSchema, message: z.string() }).optional(),
  outputs: z.array(outputFileSchema),
  startedAt: z.string().optional(),
  durationMs: z.number().nonnegative().optional(),
});
export type JobResult = z.infer<typeof jobResultSchema>;

// client → worker
const submit = z.strictObject({ t: z.literal('submit'), v: z.number().int(), jobId: jobIdSchema, definition: jobDefinitionSchema });
/**
 * The client names the outputs it lacks (those it already holds by hash are not sent again) and,
 * for a transfer that was cut short, how many bytes it already has: sending resumes there.
 */
const wantOutputs = z.strictObject({
  t: z.literal('want-outputs'),
  jobId: jobIdSchema,
  paths: z.array(relativeFilePathSchema),
  offsets: z.record(relativeFilePathSchema, z.number().int().nonnegative()).optional(),
});
const cancel = z.strictObject({ t: z.literal('cancel'), jobId: jobIdSchema });
/** Follow a job this worker holds (running or stored) by its id alone; answered like a submit. */
const attach = z.strictObject({ t: z.literal('attach'), jobId: jobIdSchema });

// worker → client
const accepted = z.strictObject({
  t: z.literal('accepted'),
  jobId: jobIdSchema,
  cached: z.boolean(),
  /**
   * Input contents (by sha256) the worker does not hold yet and wants sent, each from the offset
   * it already has on disk (a transfer cut short resumes there).
   */
  missing: z.array(z.strictObject({ sha256: sha256HexSchema, offset: z.number().int().nonnegative() })),
});
const state = z.strictObject({
  t: z.literal('state'),
  jobId: jobIdSchema,
  state: jobStateSchema,
  position: z.number().int().nonnegative().optional(),
});
const pull = z.strictObject({
  t: z.literal('pull'),
  jobId: jobIdSchema,
  image: z.string(),
  status: z.string(),
  current: z.number().nonnegative(),
  total: z.number().nonnegative(),
  layers: z
    .array(z.strictObject({ id: z.string().max(128), status: z.string().max(256), current: z.number().nonnegative(), total: z.number().nonnegative() }))
    .max(256)
    .optional(),
});
const log = z.strictObject({ t: z.literal('log'), jobId: jobIdSchema, stream: z.enum(['stdout', 'stderr']), data: z.string() });
const outputs = z.strictObject({ t: z.literal('outputs'), jobId: jobIdSchema, files: z.array(outputFileSchema) });
const result = z.strictObject({ t: z.literal('result'), result: jobResultSchema });

// either direction: file transfer and errors
const fileStart = z.strictObject({
  t: z.literal('file-start'),
  stream: streamIdSchema,
  sha256: sha256HexSchema,
  size: z.number().int().nonnegative(),
  /** Bytes the receiver already holds; the sender starts there. */
  offset: z.number().int().nonnegative().optional(),
  /** Outputs name their job and path; inputs are addressed by content alone. */
  jobId: jobIdSchema.optional(),
  path: relativeFilePathSchema.optional(),
});
const ack = z.strictObject({ t: z.literal('ack'), stream: streamIdSchema, offset: z.number().int().nonnegative() });
const fileDone = z.strictObject({ t: z.literal('file-done'), stream: streamIdSchema });
const fileError = z.strictObject({ t: z.literal('file-error'), stream: streamIdSchema, code: errorCodeSchema, message: z.string() });
/** Liveness: each end pings every few seconds; silence means the peer is gone. */
const ping = z.strictObject({ t: z.literal('ping') });
const pong = z.strictObject({ t: z.literal('pong') });
const error = z.strictObject({ t: z.literal('error'), code: errorCodeSchema, message: z.string(), jobId: jobIdSchema.optional() });

export const messageSchema = z.discriminatedUnion('t', [
  submit,
  wantOutputs,
  cancel,
  attach,
  accepted,
  state,
  pull,
  log,
  outputs,
  result,
  fileStart,
  ack,
  fileDone,
  fileError,
  ping,
  pong,
  error,
]);
export type Message = z.infer<typeof messageSchema>;
export type MessageOf<T extends Message['t']> = Extract<Message, { t: T }>;
export type FileStartMessage = MessageOf<'file-start'>;

/** The longest control message either side accepts (a job definition with many inputs fits). */
export const MAX_CONTROL_MESSAGE_CHARS = 1024 * 1024;
