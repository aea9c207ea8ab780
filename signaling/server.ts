import createDebug from 'debug';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import type { ErrorCode } from '../protocol/errors.js';
import { describeZodError } from '../protocol/zod-errors.js';
import {
  capacitySchema,
  handshakeAuthSchema,
  MAX_SIGNALING_MESSAGE_BYTES,
  signalRequestSchema,
  SignalingEvent,
  type Capacity,
  type IceServer,
  type PresenceWorker,
  type Role,
  type ServerConfig,
  type ServerError,
  type SignalDelivery,
} from '../protocol/signaling-events.js';
import { serveStatic } from './static-files.js';
import { iceServersForClient, type IceConfigOptions } from './turn-credentials.js';

const debug = createDebug('peerdock:signaling');

/** All the server knows about a socket: it lives in socket.data, so a Redis adapter can share it. */
interface SocketData {
  roomId: string;
  role: Role;
  workerId?: string;
  capacity?: Capacity;
}

type PeerSocket = Socket<Record<string, (...args: unknown[]) => void>, Record<string, (...args: unknown[]) => void>, Record<string, never>, SocketData>;

export interface SignalingServerOptions extends IceConfigOptions {
  port: number;
  host: string;
  /** Static ICE servers handed to every peer as they are. */
  iceServers?: IceServer[];
  /** Folder with the built frame, served at `/`. */
  staticDir?: string;
}

export interface SignalingServer {
  url: string;
  port: number;
  http: HttpServer;
  io: Server;
  close(): Promise<void>;
}

/**
 * The blind introducer: routes sealed envelopes between sockets of one room and tells the room
 * which workers are present. It never sees a queue, a job, an SDP or a file.
 */
export async function startSignalingServer(options: SignalingServerOptions): Promise<SignalingServer> {
  const http = createServer((request, response) => {
    void handleHttp(request, response, options.staticDir);
  });
  const io = new Server(http, {
    maxHttpBufferSize: MAX_SIGNALING_MESSAGE_BYTES,
    // A worker that vanished (kill -9, lost network) leaves presence within ~20 s, not the
    // default ~45 s, so clients stop picking it.
    pingInterval: 10_000,
    pingTimeout: 10_000,
    cors: { origin: '*' },
    serveClient: false,
  });
  /**
   * Each socket gets its own ICE configuration: TURN credentials are minted per socket and sent
   * again before they expire (the client keeps the latest), so a worker online for days still
   * hands valid ones to its peers. The TURN secret itself never leaves this process.
   */
  const sendConfig = (socket: PeerSocket) => {
    const { iceServers, expiresAt } = iceServersForClient(options);
    const config: ServerConfig = { iceServers };
    socket.emit(SignalingEvent.config, config);
    if (expiresAt === undefined) return;
    const refreshInMs = Math.max(1000, ((expiresAt - Date.now() / 1000) * 1000) / 2);
    const timer = setTimeout(() => sendConfig(socket), Math.min(refreshInMs, 2 ** 31 - 1));
    timer.unref();
    socket.once('disconnect', () => clearTimeout(timer));
  };

  io.use((socket, next) => {
    const auth = handshakeAuthSchema.safeParse(socket.handshake.auth);
    if (!auth.success) return next(refusal('ERR_SIGNALING', `handshake rejected: ${describeZodError(auth.error)}`));
    const { roomId, role, workerId, capacity } = auth.data;
    if (role === 'worker' && (!workerId || !capacity)) {
      return next(refusal('ERR_SIGNALING', 'a worker must announce its workerId and capacity'));
    }
    socket.data = { roomId, role, workerId, capacity };
    next();
  });

  io.on('connection', (raw) => {
    const socket = raw as unknown as PeerSocket;
    const { roomId, role } = socket.data;
    debug('%s joined room %s as %s', socket.id, roomId.slice(0, 8), role);
    void socket.join(roomId);
    if (role === 'worker') void socket.join(workersRoom(roomId));
    sendConfig(socket);
    if (role === 'worker') void broadcastPresence(io, roomId);
    else void presenceOf(io, roomId).then((workers) => socket.emit(SignalingEvent.presence, { workers }));

    socket.on(SignalingEvent.capacity, (value: unknown) => {
      const capacity = capacitySchema.safeParse(value);
      if (role !== 'worker') return reject(socket, 'ERR_BAD_MESSAGE', 'only workers announce capacity');
      if (!capacity.success) return reject(socket, 'ERR_BAD_MESSAGE', `capacity is malformed: ${describeZodError(capacity.error)}`);
      socket.data.capacity = capacity.data;
      void broadcastPresence(io, roomId);
    });

    socket.on(SignalingEvent.signal, async (value: unknown) => {
      const request = signalRequestSchema.safeParse(value);
      if (!request.success) return reject(socket, 'ERR_BAD_MESSAGE', `signal is malformed: ${describeZodError(request.error)}`);
      const targets = await io.in(request.data.to).fetchSockets();
      // One socket of this room, by its id: not a room name (which would reach many sockets),
      // and a socket id from elsewhere is treated exactly like an unknown one.
      const target = targets.length === 1 ? targets[0] : undefined;
      if (!target || target.id !== request.data.to || (target.data as SocketData).roomId !== roomId) {
        return reject(socket, 'ERR_SIGNAL_TARGET', `no peer ${request.data.to} in this queue (it may have left)`, request.data.to);
      }
      const delivery: SignalDelivery = { from: socket.id, envelope: request.data.envelope };
      io.to(request.data.to).emit(SignalingEvent.signal, delivery);
    });

    socket.on('disconnect', () => {
      debug('%s left room %s', socket.id, roomId.slice(0, 8));
      if (role === 'worker') void broadcastPresence(io, roomId);
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    port,
    http,
    io,
    close: () =>
      new Promise<void>((resolve) => {
        io.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

async function handleHttp(request: import('node:http').IncomingMessage, response: import('node:http').ServerResponse, staticDir?: string) {
  try {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'application/json' });
      return response.end(JSON.stringify({ ok: true }));
    }
    if (staticDir && (await serveStatic(staticDir, request, response))) return;
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    response.end(staticDir ? 'not found\n' : 'peerdock signaling server: no frame is served here (build it with npm run build)\n');
  } catch (error) {
    debug('http error: %s', (error as Error).message);
    if (!response.headersSent) response.writeHead(500);
    response.end();
  }
}

function workersRoom(roomId: string): string {
  return `${roomId}/workers`;
}

async function presenceOf(io: Server, roomId: string): Promise<PresenceWorker[]> {
  const sockets = await io.in(workersRoom(roomId)).fetchSockets();
  return sockets.flatMap((socket) => {
    const data = socket.data as SocketData;
    return data.workerId && data.capacity ? [{ socketId: socket.id, workerId: data.workerId, capacity: data.capacity }] : [];
  });
}

async function broadcastPresence(io: Server, roomId: string): Promise<void> {
  const workers = await presenceOf(io, roomId);
  io.to(roomId).emit(SignalingEvent.presence, { workers });
}

function refusal(code: ErrorCode, message: string): Error & { data: ServerError } {
  return Object.assign(new Error(message), { data: { code, message } });
}

function reject(socket: PeerSocket, code: ErrorCode, message: string, target?: string): void {
  debug('%s: %s', socket.id, message);
  const error: ServerError = { code, message, ...(target ? { target } : {}) };
  socket.emit(SignalingEvent.error, error);
}
