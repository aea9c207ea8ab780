import createDebug from 'debug';
import { io, type Socket } from 'socket.io-client';
import { z } from 'zod';
import { openEnvelope, sealEnvelope } from '../protocol/envelope.js';
import { PeerdockError } from '../protocol/errors.js';
import { deriveQueueKeys, type QueueKeys } from '../protocol/queue-keys.js';
import {
  presenceSchema,
  serverConfigSchema,
  serverErrorSchema,
  signalDeliverySchema,
  SignalingEvent,
  type Capacity,
  type IceServer,
  type PresenceWorker,
  type Role,
  type ServerError,
} from '../protocol/signaling-events.js';

const debug = createDebug('peerdock:signaling-client');

/** What peers put inside a sealed envelope: a simple-peer signal, tagged with its peer session. */
export const signalPayloadSchema = z.strictObject({
  session: z.string().regex(/^[0-9a-f]{16,64}$/),
  signal: z.record(z.string(), z.unknown()),
});
export type SignalPayload = z.infer<typeof signalPayloadSchema>;

export interface SignalingClientOptions {
  url: string;
  queue: string;
  role: Role;
  workerId?: string;
  capacity?: Capacity;
  /** How long to wait for the first connection before failing with ERR_SIGNALING. */
  connectTimeoutMs?: number;
}

/**
 * A peer's line to the signaling server: joins the room derived from the queue, tracks the
 * workers present, and sends and receives sealed signals. Reconnects on its own with backoff.
 */
export class SignalingClient {
  iceServers: IceServer[] = [];
  workers: PresenceWorker[] = [];
  private readonly presenceListeners = new Set<(workers: PresenceWorker[]) => void>();
  private readonly signalListeners = new Set<(from: string, payload: SignalPayload) => void>();
  private readonly connectionListeners = new Set<(connected: boolean) => void>();
  private readonly errorListeners = new Set<(error: ServerError) => void>();
  private deliveries: Promise<void> = Promise.resolve();
  private sends: Promise<void> = Promise.resolve();

  private constructor(
    private readonly socket: Socket,
    readonly keys: QueueKeys,
    private capacity: Capacity | undefined,
  ) {
    socket.on(SignalingEvent.presence, (value: unknown) => {
      const parsed = presenceSchema.safeParse(value);
      if (!parsed.success) return debug('ignoring malformed presence');
      this.workers = parsed.data.workers;
      for (const listener of this.presenceListeners) listener(this.workers);
    });
    socket.on(SignalingEvent.config, (value: unknown) => {
      const parsed = serverConfigSchema.safeParse(value);
      if (parsed.success) this.iceServers = parsed.data.iceServers;
    });
    // Decryption is asynchronous: chain deliveries so signals reach the peer in the order sent
    // (an answer before its candidates).
    socket.on(SignalingEvent.signal, (value: unknown) => {
      this.deliveries = this.deliveries.then(() => this.deliverSignal(value));
    });
    socket.on(SignalingEvent.error, (value: unknown) => {
      const parsed = serverErrorSchema.safeParse(value);
      debug('server error: %o', parsed.success ? parsed.data : value);
      if (parsed.success) for (const listener of this.errorListeners) listener(parsed.data);
    });
    socket.on('connect', () => this.connectionListeners.forEach((listener) => listener(true)));
    socket.on('disconnect', () => {
      this.workers = [];
      this.presenceListeners.forEach((listener) => listener([]));
      this.connectionListeners.forEach((listener) => listener(false));
    });
  }

  static async connect(options: SignalingClientOptions): Promise<SignalingClient> {
    const keys = await deriveQueueKeys(options.queue);
    let current: SignalingClient | undefined;
    const socket = io(options.url, {
      transports: ['websocket'],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      // A function, so a reconnect announces the capacity of that moment.
      auth: (send) =>
        send({
          roomId: keys.roomId,
          role: options.role,
          ...(options.workerId ? { workerId: options.workerId } : {}),
          ...((current?.capacity ?? options.capacity) ? { capacity: current?.capacity ?? options.capacity } : {}),
        }),
    });
    const client = new SignalingClient(socket, keys, options.capacity);
    current = client;
    const timeoutMs = options.connectTimeoutMs ?? 15_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.close();
        reject(
          new PeerdockError(
            'ERR_SIGNALING',
            `could not reach the signaling server at ${options.url} within ${Math.round(timeoutMs / 1000)}s: check the URL (--signal) and that the server runs`,
          ),
        );
      }, timeoutMs);
      // The server sends its config right after accepting the handshake.
      socket.once(SignalingEvent.config, () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('connect_error', (error: Error & { data?: unknown }) => {
        debug('connect error: %s', error.message);
        const refusal = serverErrorSchema.safeParse(error.data);
        if (refusal.success) {
          clearTimeout(timer);
          socket.close();
          reject(new PeerdockError('ERR_SIGNALING', `the signaling server refused us: ${refusal.data.message}`));
        }
      });
    });
    return client;
  }

  get id(): string | undefined {
    return this.socket.id;
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  onPresence(listener: (workers: PresenceWorker[]) => void): () => void {
    this.presenceListeners.add(listener);
    return () => this.presenceListeners.delete(listener);
  }

  onSignal(listener: (from: string, payload: SignalPayload) => void): () => void {
    this.signalListeners.add(listener);
    return () => this.signalListeners.delete(listener);
  }

  /** Refusals from the server, e.g. a signal to a peer that has left (ERR_SIGNAL_TARGET). */
  onServerError(listener: (error: ServerError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  onConnectionChange(listener: (connected: boolean) => void): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  /**
   * Seals and sends a signal. Sealing is asynchronous, so sends are chained: signals leave in the
   * order given (an offer before its candidates), or libdatachannel refuses a candidate that
   * arrives before its description.
   */
  sendSignal(to: string, payload: SignalPayload): Promise<void> {
    const send = this.sends.then(async () => {
      const from = this.socket.id;
      if (!from) throw new PeerdockError('ERR_SIGNALING', 'not connected to the signaling server');
      const envelope = await sealEnvelope(this.keys.signalKey, { roomId: this.keys.roomId, from, to }, payload);
      this.socket.emit(SignalingEvent.signal, { to, envelope });
    });
    this.sends = send.catch(() => {});
    return send;
  }

  /** Workers: announce free slots; the server pushes presence to the room. */
  setCapacity(capacity: Capacity): void {
    this.capacity = capacity;
    if (this.socket.connected) this.socket.emit(SignalingEvent.capacity, capacity);
  }

  close(): void {
    this.socket.close();
  }

  private async deliverSignal(value: unknown): Promise<void> {
    const delivery = signalDeliverySchema.safeParse(value);
    const to = this.socket.id;
    if (!delivery.success || !to) return debug('ignoring malformed signal delivery');
    try {
      const payload = await openEnvelope(this.keys.signalKey, { roomId: this.keys.roomId, from: delivery.data.from, to }, delivery.data.envelope);
      const parsed = signalPayloadSchema.safeParse(payload);
      if (!parsed.success) return debug('ignoring signal with a malformed payload from %s', delivery.data.from);
      for (const listener of this.signalListeners) listener(delivery.data.from, parsed.data);
    } catch (error) {
      debug('dropping signal from %s: %s', delivery.data.from, (error as Error).message);
    }
  }
}
