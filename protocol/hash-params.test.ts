import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  getHashParamValueJsonFromUrl,
  getHashParamValue,
  setHashParamValueJsonInUrl,
  setHashParamValueInUrl,
  setHashParamValueBooleanInUrl,
} from '@metapages/hash-query';
import { decodeHashJson, encodeHashValue, formatFrameHash, parseFrameHash } from './hash-params.js';

const job = { image: 'alpine:3.20', command: 'sh -c "echo héllo & date > /outputs/d.txt"', env: { A: '1' } };

describe('hash params, compatible with @metapages/hash-query', () => {
  test('a JSON value we write is read back by the library, and the reverse', () => {
    const ours = `https://x.test/#?job=${encodeHashValue(job)}`;
    assert.deepEqual(getHashParamValueJsonFromUrl(ours, 'job'), job);

    const theirs = setHashParamValueJsonInUrl('https://x.test/', 'job', job);
    const parsed = parseFrameHash(theirs.hash);
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(parsed.job, job);
    // Same bytes as the library writes: the links are interchangeable.
    assert.equal(theirs.hash, `#?job=${encodeHashValue(job)}`);
  });

  test('reads a percent-encoded base64 value too, as the library does', () => {
    const value = encodeURIComponent(encodeHashValue({ image: 'x', command: ['a', 'b'] }));
    assert.deepEqual(decodeHashJson(value), { image: 'x', command: ['a', 'b'] });
  });

  test('strings and booleans', () => {
    const url = setHashParamValueBooleanInUrl(setHashParamValueInUrl('https://x.test/', 'queue', 'q-0123abcd'), 'autostart', true);
    const parsed = parseFrameHash(url.hash);
    assert.equal(parsed.queue, 'q-0123abcd');
    assert.equal(parsed.autostart, true);
    assert.equal(getHashParamValue(`https://x.test/#?queue=${encodeHashValue('q-0123abcd')}`, 'queue'), 'q-0123abcd');
  });

  test('formatFrameHash keeps foreign parameters and what precedes the ?', () => {
    const hash = formatFrameHash('#page?zeta=1', { queue: 'my-queue-1', job, inputs: { 'a.txt': 'hi' }, autostart: false });
    assert.match(hash, /^page\?inputs=[^&]+&job=[^&]+&queue=my-queue-1&zeta=1$/);
    const parsed = parseFrameHash(hash);
    assert.deepEqual(parsed.inputs, { 'a.txt': 'hi' });
    assert.deepEqual(parsed.job, job);
    assert.deepEqual(parsed.errors, []);
    assert.match(parsed.notices.join(' '), /zeta/);
  });

  test('malformed values give specific messages, never a throw', () => {
    const bad = parseFrameHash('#?job=%%%not-base64&inputs=' + encodeHashValue(['x']) + '&autostart=maybe');
    assert.equal(bad.job, undefined);
    assert.equal(bad.errors.length, 3);
    assert.match(bad.errors[0]!, /"job" parameter could not be read/);
    assert.match(bad.errors[1]!, /"inputs" parameter must map file names to text/);
    assert.match(bad.errors[2]!, /autostart/);

    const wrongShape = parseFrameHash('#?job=' + encodeHashValue({ image: 42 }));
    assert.match(wrongShape.errors[0]!, /"job" parameter is not a job definition: image/);
  });

  test('unknown job keys from container.mtfm.io links are reported, not fatal', () => {
    const parsed = parseFrameHash('#?job=' + encodeHashValue({ image: 'alpine', gpu: true }));
    assert.equal(parsed.job?.image, 'alpine');
    assert.deepEqual(parsed.errors, []);
    assert.match(parsed.notices[0]!, /gpu/);
  });
});
