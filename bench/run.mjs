#!/usr/bin/env node
// `npm run bench:transfer` / `npm run bench:job`: measurements, not tests (see bench/transfer.ts,
// bench/job.ts). As root it first makes sure dockerd runs and the offline test image exists (both
// scripts are idempotent), then re-runs itself inside a fresh network namespace with only
// loopback up, like scripts/test.mjs, so no benchmark traffic can leave the machine.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const which = process.argv[2];
const scripts = { transfer: 'bench/transfer.ts', job: 'bench/job.ts' };
if (!scripts[which]) {
  console.error('usage: node bench/run.mjs transfer|job');
  process.exit(2);
}

const isRoot = process.getuid?.() === 0;
if (isRoot && !process.env.PEERDOCK_BENCH_NETNS) {
  for (const script of ['scripts/start-dockerd.sh', 'scripts/test-image.sh']) {
    const run = spawnSync('bash', [script], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    if (run.status !== 0) {
      console.error(`bench: ${script} failed`);
      process.exit(1);
    }
  }
  if (spawnSync('unshare', ['--version']).status === 0) {
    const inner = spawnSync(
      'unshare',
      ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, fileURLToPath(import.meta.url), which],
      { stdio: 'inherit', env: { ...process.env, PEERDOCK_BENCH_NETNS: '1' } },
    );
    process.exit(inner.status ?? 1);
  }
}
if (!process.env.PEERDOCK_BENCH_NETNS) {
  console.error('bench: note: not root, so this runs in the host network namespace; all servers and WebRTC still bind to loopback.');
}

const run = spawnSync(process.execPath, ['--import', 'tsx', scripts[which]], { cwd: root, stdio: 'inherit' });
process.exit(run.status ?? 1);
