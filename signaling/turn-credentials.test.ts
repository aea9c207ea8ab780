import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { io as connectSocket } from 'socket.io-client';
import { deriveQueueKeys } from '../protocol/queue-keys.js';
import { serverConfigSchema } from '../protocol/signaling-events.js';
import { startSignalingServer } from './server.js';
import { checkIceUrls, iceServersForClient, mintTurnCredentials, turnCredentialFor } from './turn-credentials.js';

describe('TURN REST credentials', () => {
  test('HMAC-SHA1 matches RFC 2202 test case 2, base64-encoded', () => {
    // key "Jefe", data "what do ya want for nothing?" -> effcdf6ae5eb2fa2d27416d5f184df9c259a7c79
    assert.equal(turnCredentialFor('Jefe', 'what do ya want for nothing?'), Buffer.from('effcdf6ae5eb2fa2d27416d5f184df9c259a7c79', 'hex').toString('base64'));
  });

  test('username is "<expiry>:<id>" and the credential matches openssl', () => {
    // printf '%s' '1700003600:peerdock' | openssl dgst -sha1 -hmac 'lab-secret-0123' -binary | base64
    const minted = mintTurnCredentials('lab-secret-0123', 3600, { id: 'peerdock', nowMs: 1_700_000_000_000 });
    assert.deepEqual(minted, { username: '1700003600:peerdock', credential: 'fLhG6v3hSuDrAzbYISIM/a+NoDg=', expiresAt: 1_700_003_600 });
    // printf '%s' '1433895918506:my_user_name' | openssl dgst -sha1 -hmac 'my_secret' -binary | base64
    assert.equal(turnCredentialFor('my_secret', '1433895918506:my_user_name'), '1Dj9XZ5fwvKS6YoQZOoORcFnXaI=');
  });

  test('each mint has its own random id; the lifetime is rounded up to whole seconds', () => {
    const a = mintTurnCredentials('s', 0.5, { nowMs: 10_999 });
    const b = mintTurnCredentials('s', 0.5, { nowMs: 10_999 });
    assert.equal(a.expiresAt, 11);
    assert.match(a.username, /^11:[\w-]{12}$/);
    assert.notEqual(a.username, b.username);
    assert.throws(() => mintTurnCredentials('', 10));
    assert.throws(() => mintTurnCredentials('s', 0));
  });

  test('client config: static list, then STUN, then TURN with credentials; no TURN without a secret', () => {
    const { iceServers, expiresAt } = iceServersForClient(
      { iceServers: [{ urls: 'stun:static.example:3478' }], stun: ['stun:a:3478'], turn: ['turn:a:3478', 'turn:a:3478?transport=tcp'], turnSecret: 'k', turnTtlSeconds: 60 },
      5_000_000,
    );
    assert.equal(expiresAt, 5060);
    assert.deepEqual(iceServers.slice(0, 2), [{ urls: 'stun:static.example:3478' }, { urls: ['stun:a:3478'] }]);
    const turn = iceServers[2]!;
    assert.deepEqual(turn.urls, ['turn:a:3478', 'turn:a:3478?transport=tcp']);
    assert.match(turn.username!, /^5060:/);
    assert.equal(turn.credential, turnCredentialFor('k', turn.username!));
    assert.deepEqual(iceServersForClient({ turn: ['turn:a:3478'] }).iceServers, []);
  });

  test('URL checks', () => {
    assert.equal(checkIceUrls(['stun:10.0.0.1:3478', 'stun:host'], 'stun'), undefined);
    assert.equal(checkIceUrls(['turn:h:3478?transport=tcp', 'turns:h:5349'], 'turn'), undefined);
    assert.match(checkIceUrls(['http://h'], 'stun')!, /not a STUN URL/);
    assert.match(checkIceUrls(['turn:user:pass@h:3478'], 'turn')!, /not a TURN URL/);
  });

  test('the server mints per socket, never sends the secret, and refreshes before expiry', async () => {
    const secret = 'never-on-the-wire-7f3a';
    const server = await startSignalingServer({ port: 0, host: '127.0.0.1', stun: ['stun:192.0.2.1:3478'], turn: ['turn:192.0.2.1:3478'], turnSecret: secret, turnTtlSeconds: 2 });
    const { roomId } = await deriveQueueKeys('queue-turn-credentials-0001');
    const sockets: Array<ReturnType<typeof connectSocket>> = [];
    try {
      const configs = (count: number) => {
        const socket = connectSocket(server.url, { transports: ['websocket'], auth: { roomId, role: 'client' } });
        sockets.push(socket);
        const raw: string[] = [];
        return new Promise<string[]>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`only ${raw.length} config(s) arrived`)), 5000);
          socket.on('config', (value: unknown) => {
            raw.push(JSON.stringify(value));
            if (raw.length === count) {
              clearTimeout(timer);
              resolve(raw);
            }
          });
        });
      };
      const [first, second] = await Promise.all([configs(2), configs(1)]);
      for (const text of [...first!, ...second!]) {
        assert.ok(!text.includes(secret), 'the secret must not reach a client');
        const config = serverConfigSchema.parse(JSON.parse(text));
        const turn = config.iceServers.find((server) => String(server.urls).startsWith('turn:'))!;
        assert.equal(turn.credential, turnCredentialFor(secret, turn.username!));
      }
      const usernames = [...first!, ...second!].map((text) => serverConfigSchema.parse(JSON.parse(text)).iceServers[1]!.username);
      assert.equal(new Set(usernames).size, 3, 'every socket and every refresh gets its own username');
    } finally {
      sockets.forEach((socket) => socket.close());
      await server.close();
    }
  });
});
