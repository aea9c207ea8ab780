/**
 * NAT lab client probe: joins a queue as a client, dials the first worker exactly as
 * `peerdock job run` does (dialPeer, node-datachannel, the signaling server's ICE servers), and
 * prints one JSON line: {"ok":true,"connection":{kind,local,remote,connectMs}} or
 * {"ok":false,"code","message","ms"}.
 *
 *   node --import tsx nat-lab/probe.ts <signal-url> <queue> <connect-timeout-ms>
 */
import { waitForWorker } from '../client/run-job.js';
import { dialPeer } from '../peer/connect.js';
import { nodeWrtc } from '../peer/node-wrtc.js';
import { SignalingClient } from '../peer/signaling-client.js';
import { toPeerdockError } from '../protocol/errors.js';

const [url, queue, timeoutText] = process.argv.slice(2);
if (!url || !queue) {
  process.stderr.write('usage: probe.ts <signal-url> <queue> [connect-timeout-ms]\n');
  process.exit(2);
}
const signaling = await SignalingClient.connect({ url, queue, role: 'client' });
const worker = await waitForWorker(signaling, 20_000);
const startedAt = Date.now();
try {
  const session = await dialPeer(signaling, worker.socketId, { wrtc: nodeWrtc(), connectTimeoutMs: Number(timeoutText ?? 20_000) });
  process.stdout.write(`${JSON.stringify({ ok: true, connection: session.connection, iceServers: signaling.iceServers.length })}\n`);
  session.link.close();
  session.peer.destroy();
} catch (error) {
  const problem = toPeerdockError(error);
  process.stdout.write(`${JSON.stringify({ ok: false, code: problem.code, message: problem.message, ms: Date.now() - startedAt })}\n`);
}
signaling.close();
setTimeout(() => process.exit(0), 200).unref();
