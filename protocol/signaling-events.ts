import { z } from 'zod';
import { envelopeSchema } from './envelope.js';

/** Socket.io events between peers and the signaling server. The server parses every one of them. */

export const roomIdSchema = z.string().regex(/^[0-9a-f]{32}$/, 'must be a 32-digit hex room id');
export const socketIdSchema = z.string().min(1).max(64);
export const roleSchema = z.enum(['worker', 'client']);
export type Role = z.infer<typeof roleSchema>;

export const capacitySchema = z.strictObject({
  cores: z.number().int().positive().max(4096),
  free: z.number().int().nonnegative().max(4096),
  queued: z.number().int().nonnegative().max(1_000_000),
});
export type Capacity = z.infer<typeof capacitySchema>;

export const handshakeAuthSchema = z.strictObject({
  roomId: roomIdSchema,
  role: roleSchema,
  /** Workers only: a stable, operator-chosen name, shown to clients. */
  workerId: z.string().min(1).max(64).regex(/^[\w.@-]+$/).optional(),
  capacity: capacitySchema.optional(),
});
export type HandshakeAuth = z.infer<typeof handshakeAuthSchema>;

/** A peer asks the server to pass an envelope to one socket of its room. */
export const signalRequestSchema = z.strictObject({ to: socketIdSchema, envelope: envelopeSchema });
export type SignalRequest = z.infer<typeof signalRequestSchema>;

/** What the recipient gets; `from` is set by the server, never by the sender. */
export const signalDeliverySchema = z.strictObject({ from: socketIdSchema, envelope: envelopeSchema });
export type SignalDelivery = z.infer<typeof signalDeliverySchema>;

export const presenceWorkerSchema = z.strictObject({
  socketId: socketIdSchema,
  workerId: z.string(),
  capacity: capacitySchema,
});
export type PresenceWorker = z.infer<typeof presenceWorkerSchema>;
export const presenceSchema = z.strictObject({ workers: z.array(presenceWorkerSchema) });
export type Presence = z.infer<typeof presenceSchema>;

export const iceServerSchema = z.strictObject({
  urls: z.union([z.string(), z.array(z.string())]),
  username: z.string().optional(),
  credential: z.string().optional(),
});
export type IceServer = z.infer<typeof iceServerSchema>;
export const iceServersSchema = z.array(iceServerSchema);

export const serverConfigSchema = z.strictObject({ iceServers: iceServersSchema });
export type ServerConfig = z.infer<typeof serverConfigSchema>;

/** A refusal from the server; `target` names the peer a refused signal was meant for. */
export const serverErrorSchema = z.strictObject({ code: z.string(), message: z.string(), target: socketIdSchema.optional() });
export type ServerError = z.infer<typeof serverErrorSchema>;

/** Event names, in one place for both ends. */
export const SignalingEvent = {
  signal: 'signal',
  capacity: 'capacity',
  presence: 'presence',
  config: 'config',
  error: 'peerdock-error',
} as const;

/** The largest socket.io message the server accepts; signals are a few KiB. */
export const MAX_SIGNALING_MESSAGE_BYTES = 64 * 1024;
