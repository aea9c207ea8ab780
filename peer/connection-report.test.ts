import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CandidateTally, connectionKind, describeConnection, explainConnectFailure, readConnectionReport } from './connection-report.js';

let port = 40000;
const candidate = (typ: string) => ({ type: 'candidate', candidate: { candidate: `candidate:1 1 UDP 2122317823 10.1.0.2 ${port++} typ ${typ}`, sdpMid: '0' } });

describe('connection report', () => {
  test('kind from the selected pair', () => {
    assert.equal(connectionKind('host', 'host'), 'direct');
    assert.equal(connectionKind('prflx', 'host'), 'direct');
    assert.equal(connectionKind('srflx', 'prflx'), 'stun');
    assert.equal(connectionKind('srflx', 'relay'), 'relay');
  });

  test('reads the standard getStats() entries (transport → candidate-pair → candidates)', async () => {
    const stats = new Map<string, Record<string, unknown>>([
      ['T', { id: 'T', type: 'transport', selectedCandidatePairId: 'P' }],
      ['P', { id: 'P', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', state: 'succeeded' }],
      ['L', { id: 'L', type: 'local-candidate', candidateType: 'relay', protocol: 'udp', address: '198.51.100.1', port: 50000 }],
      ['R', { id: 'R', type: 'remote-candidate', candidateType: 'srflx', ip: '203.0.113.2', port: 1234 }],
    ]);
    const report = await readConnectionReport({ getStats: async () => stats });
    assert.deepEqual(report, {
      kind: 'relay',
      local: { type: 'relay', protocol: 'udp', address: '198.51.100.1', port: 50000 },
      remote: { type: 'srflx', address: '203.0.113.2', port: 1234 },
    });
    assert.equal(describeConnection({ ...report!, connectMs: 312 }), 'relayed through TURN (relay ↔ srflx, udp), connected in 312 ms');
    assert.equal(await readConnectionReport({ getStats: async () => new Map() }), undefined);
  });

  test('failure message: what was gathered and what fixes it', () => {
    const tally = new CandidateTally();
    tally.addLocal(candidate('host'));
    tally.addLocal(candidate('srflx'));
    tally.addLocal({ type: 'offer', sdp: 'v=0\r\na=candidate:2 1 UDP 1 10.1.0.2 5000 typ host\r\n' });
    tally.addLocal(candidate('host'));
    tally.addLocal({ type: 'candidate', candidate: { candidate: 'candidate:2 1 UDP 1 10.1.0.2 5000 typ host' } }); // again: not counted
    tally.addRemote(candidate('srflx'));
    const noTurn = explainConnectFailure(tally, [{ urls: 'stun:198.51.100.1:3478' }], 'the worker');
    assert.match(noTurn, /our candidates host ×3, srflx ×1; the worker's srflx ×1; 1 STUN and no TURN URL\(s\)/);
    assert.match(noTurn, /a TURN server usually fixes this/);
    assert.match(explainConnectFailure(tally, [{ urls: ['turn:h:3478'], username: 'u', credential: 'c' }]), /gave us no relay candidate/);
    assert.match(explainConnectFailure(new CandidateTally(), []), /none \(no signal came back\); no STUN or TURN server/);
  });
});
