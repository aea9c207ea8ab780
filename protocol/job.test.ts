import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { canonicalJson } from './canonical-json.js';
import { PeerdockError } from './errors.js';
import { buildJobDefinition, computeJobId, parseJobDefinition, relativePathProblem, type FileRef, type JobSpec } from './job.js';

function ref(content: string): FileRef {
  const bytes = Buffer.from(content);
  return { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.byteLength };
}

async function idOf(spec: JobSpec, inputs: Record<string, FileRef> = {}): Promise<string> {
  return computeJobId(buildJobDefinition(spec, inputs));
}

function assertInvalidJob(run: () => unknown, mentions?: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof PeerdockError, `expected a PeerdockError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_INVALID_JOB');
    if (mentions) assert.match(error.message, mentions);
    return true;
  });
}

const base: JobSpec = {
  image: 'alpine:3.20',
  command: ['sh', '-c', 'cat /inputs/a.txt > /outputs/b.txt'],
  env: { A: '1', B: 'two' },
};
const baseInputs = { 'a.txt': ref('hello'), 'dir/b.bin': ref('world') };

describe('computeJobId', () => {
  test('is a lowercase hex sha256 of the canonical definition', async () => {
    const definition = buildJobDefinition(base, baseInputs);
    const id = await computeJobId(definition);
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(id, createHash('sha256').update(canonicalJson(definition)).digest('hex'));
  });

  test('is stable across the order of env keys and of inputs', async () => {
    const a = await idOf({ ...base, env: { A: '1', B: 'two' } }, { 'a.txt': ref('hello'), 'dir/b.bin': ref('world') });
    const b = await idOf({ env: { B: 'two', A: '1' }, command: base.command, image: base.image }, {
      'dir/b.bin': ref('world'),
      'a.txt': ref('hello'),
    });
    assert.equal(a, b);
  });

  test('is the same for equal definitions: a command line or the equivalent argv', async () => {
    const fromLine = await idOf({ ...base, command: `sh -c 'cat /inputs/a.txt > /outputs/b.txt'` }, baseInputs);
    const fromArgv = await idOf(base, baseInputs);
    assert.equal(fromLine, fromArgv);
    // and an empty env, workdir or command is the same as none at all
    assert.equal(
      await idOf({ image: 'alpine', env: {}, workdir: '', command: '' }),
      await idOf({ image: 'alpine' }),
    );
  });

  test('is the same when computed twice from separately built definitions', async () => {
    assert.equal(await idOf(base, baseInputs), await idOf(structuredClone(base), structuredClone(baseInputs)));
  });

  test('changes with any change of the job', async () => {
    const reference = await idOf(base, baseInputs);
    const variants: Array<[string, Promise<string>]> = [
      ['image', idOf({ ...base, image: 'alpine:3.21' }, baseInputs)],
      ['command', idOf({ ...base, command: ['sh', '-c', 'cat /inputs/a.txt >/outputs/b.txt'] }, baseInputs)],
      ['command split differently', idOf({ ...base, command: ['sh', '-c', 'cat', '/inputs/a.txt', '>', '/outputs/b.txt'] }, baseInputs)],
      ['entrypoint', idOf({ ...base, entrypoint: ['/bin/sh'] }, baseInputs)],
      ['env value', idOf({ ...base, env: { A: '1', B: 'three' } }, baseInputs)],
      ['env key', idOf({ ...base, env: { A: '1', C: 'two' } }, baseInputs)],
      ['input bytes', idOf(base, { ...baseInputs, 'a.txt': ref('hellp') })],
      ['input name', idOf(base, { 'A.txt': ref('hello'), 'dir/b.bin': ref('world') })],
      ['input moved to a folder', idOf(base, { 'x/a.txt': ref('hello'), 'dir/b.bin': ref('world') })],
      ['one more input', idOf(base, { ...baseInputs, 'c.txt': ref('') })],
      ['workdir', idOf({ ...base, workdir: '/work' }, baseInputs)],
      ['maxDuration', idOf({ ...base, maxDuration: '10m' }, baseInputs)],
    ];
    const ids = new Map<string, string>([[reference, 'reference']]);
    for (const [what, pending] of variants) {
      const id = await pending;
      assert.ok(!ids.has(id), `changing the ${what} gave the same job id as the ${ids.get(id)}`);
      ids.set(id, what);
    }
  });

  test('tracks the sha256, not only the size, of an input', async () => {
    const same = ref('aaaa');
    const other = ref('bbbb');
    assert.equal(same.size, other.size);
    assert.notEqual(await idOf(base, { 'a.txt': same }), await idOf(base, { 'a.txt': other }));
  });
});

describe('buildJobDefinition', () => {
  test('normalizes a spec: command line split, duration in seconds, empty fields dropped', () => {
    const definition = buildJobDefinition(
      { image: 'registry.local:5000/team/tool@sha256:' + 'a'.repeat(64), command: 'echo "a b" c', maxDuration: '1h30m', workdir: '', env: {} },
      { 'in.txt': ref('x') },
    );
    // absent members may be present as undefined; what counts is what travels and what is hashed
    assert.deepEqual(JSON.parse(JSON.stringify(definition)), {
      image: 'registry.local:5000/team/tool@sha256:' + 'a'.repeat(64),
      command: ['echo', 'a b', 'c'],
      maxDuration: 5400,
      inputs: { 'in.txt': ref('x') },
    });
  });

  test('ignores unknown keys from container.mtfm.io links', () => {
    const definition = buildJobDefinition({ image: 'alpine', gpu: true } as JobSpec, {});
    assert.deepEqual(JSON.parse(JSON.stringify(definition)), { image: 'alpine', inputs: {} });
  });

  test('rejects a bad image', () => {
    for (const image of ['', '-alpine', 'alpine latest', 'alpine;rm -rf /', 'al$pine', 'a'.repeat(513)]) {
      assertInvalidJob(() => buildJobDefinition({ image }, {}), /image/);
    }
  });

  test('rejects input names that escape or are not plain relative paths', () => {
    for (const name of ['../x', 'a/../../x', '/abs', 'a//b', './a', 'a/', '', 'a\\b', 'a\u0000b']) {
      assertInvalidJob(() => buildJobDefinition({ image: 'alpine' }, { [name]: ref('x') }), /inputs/);
    }
    // the message names the offending input and says what is wrong with it
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine' }, { 'ok.txt': ref('x'), '../x': ref('x') }), /inputs\.\.\.\/x: .*climbs out/);
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine' }, { '/abs': ref('x') }), /absolute/);
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine' }, { 'a//b': ref('x') }), /empty or \. segment/);
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine', env: { 'BAD-NAME': 'x' } }, {}), /is not an environment variable name/);
  });

  test('relativePathProblem says what is wrong with a name', () => {
    assert.match(relativePathProblem('../x') ?? '', /climbs out/);
    assert.match(relativePathProblem('/abs') ?? '', /absolute/);
    assert.match(relativePathProblem('a//b') ?? '', /empty/);
    assert.match(relativePathProblem('a\\b') ?? '', /backslash/);
    assert.match(relativePathProblem('a\nb') ?? '', /control character/);
    assert.match(relativePathProblem('x'.repeat(256)) ?? '', /longer than 255/);
    assert.equal(relativePathProblem('dir/sub/file.txt'), undefined);
    assert.equal(relativePathProblem('..hidden/.x'), undefined);
  });

  test('rejects malformed input refs, env names, workdirs and commands', () => {
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine' }, { 'a.txt': { sha256: 'ABC', size: 1 } }));
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine' }, { 'a.txt': { sha256: 'a'.repeat(64), size: -1 } }));
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine', env: { '1BAD': 'x' } }, {}), /env/);
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine', workdir: 'relative' }, {}), /workdir/);
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine', command: 'echo "unterminated' }, {}), /unterminated/);
    assertInvalidJob(() => buildJobDefinition({ image: 'alpine', command: [1, 2] as unknown as string[] }, {}), /command/);
  });

  test('parseJobDefinition refuses unknown keys in a definition from the wire', () => {
    const definition = buildJobDefinition(base, baseInputs);
    const fromWire = parseJobDefinition(JSON.parse(JSON.stringify(definition)));
    assert.equal(canonicalJson(fromWire), canonicalJson(definition));
    assertInvalidJob(() => parseJobDefinition({ ...definition, privileged: true }));
    assertInvalidJob(() => parseJobDefinition({ ...definition, command: 'echo hi' }));
  });
});

describe('canonicalJson', () => {
  test('sorts keys at every depth, drops undefined members and keeps array order', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: undefined, b: null } }), '{"a":{"b":null,"d":[2,1]},"b":1}');
    assert.equal(canonicalJson([undefined, 'x']), '[null,"x"]');
  });

  test('refuses values with no JSON form', () => {
    assert.throws(() => canonicalJson(Number.NaN), TypeError);
    assert.throws(() => canonicalJson({ a: () => 1 }), TypeError);
  });
});
