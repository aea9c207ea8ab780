/**
 * `npm start` (peerdock dev): the URL it prints opens the frame connected to the local worker,
 * with a job ready to run, and running it works.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { launchChromium, screenshot } from './frame-browser.js';
import { BIN, removeTempDirs, ROOT, tempDir } from './harness.js';

let dev: ReturnType<typeof spawn>;
let output = '';
let context: BrowserContext;

before(async () => {
  const home = await tempDir('dev-home');
  // HOME apart so the dev worker's data directory is a fresh one.
  // The default port (8080), or a free one when it is taken.
  dev = spawn(process.execPath, [BIN, 'dev'], { cwd: ROOT, env: { ...process.env, HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  dev.stdout!.on('data', (chunk) => (output += chunk));
  dev.stderr!.on('data', (chunk) => (output += chunk));
  context = await launchChromium();
});

after(async () => {
  await context?.close();
  if (dev && dev.exitCode === null) {
    const exited = new Promise((resolve) => dev.once('exit', resolve));
    dev.kill('SIGTERM');
    await exited;
  }
  await removeTempDirs();
});

test('npm start prints a frame URL that opens connected to the local worker, with a job ready to run', async () => {
  const deadline = Date.now() + 30_000;
  let match: RegExpMatchArray | null = null;
  while (!(match = output.match(/Open the frame:\s+(\S+)/)) && Date.now() < deadline && dev.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(match, `no frame URL printed:\n${output}`);
  const page = await context.newPage();
  await page.goto(match[1]!);
  await page.locator('[data-testid=connection]').getByText(/1 worker/).waitFor({ timeout: 20_000 });
  assert.notEqual(await page.locator('#image').inputValue(), '');
  assert.match(await page.locator('#command').inputValue(), /outputs/);
  await page.locator('[data-testid=run]').click();
  await page.locator('[data-testid=status][data-phase=finished]').waitFor({ timeout: 60_000 });
  await page.locator('[data-testid=output][data-path="date.txt"]').waitFor();
  await page.locator('[data-testid=logs]', { hasText: 'hello from' }).waitFor();
  await screenshot(page, '00-npm-start');
  await page.close();
});
