#!/usr/bin/env node
// `npm test`: builds the frame, then runs every *.test.ts beside the code with node's test runner.
// As root (CI), it re-runs itself inside a fresh network namespace that has only loopback, so
// WebRTC, socket.io and browser traffic cannot leave the machine (see shared/design.md).
// `npm test -- worker protocol/job` runs only test files whose path contains one of the words.
// The NAT lab (nat-lab/) builds its own named namespaces with `ip netns`, which works from
// inside that loopback-only namespace too; it skips itself when not root (fails on CI).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);

if (process.getuid?.() === 0 && !process.env.PEERDOCK_TEST_NETNS && spawnSync('unshare', ['--version']).status === 0) {
  const inner = spawnSync(
    'unshare',
    ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, fileURLToPath(import.meta.url), ...filters],
    { stdio: 'inherit', env: { ...process.env, PEERDOCK_TEST_NETNS: '1' } },
  );
  process.exit(inner.status ?? 1);
}
if (!process.env.PEERDOCK_TEST_NETNS) {
  console.log('note: not root, so tests run in this network namespace; WebRTC is still bound to loopback by the tests.');
}

const build = spawnSync(process.execPath, [join(root, 'esbuild.config.mjs')], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const skip = new Set(['node_modules', 'dist', '.git', '.peerdock']);
function findTests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return skip.has(entry.name) ? [] : findTests(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}
const files = findTests(root)
  .map((file) => relative(root, file))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-force-exit', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
