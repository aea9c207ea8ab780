/**
 * The frame, <peerdock-job>, in real Chromium against real processes: `peerdock signal` serving
 * the built frame, a `peerdock worker run` with the Docker engine, WebRTC between Chromium and
 * the worker on loopback.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { encodeHashValue } from '../protocol/hash-params.js';
import { debugNote, launchChromium, screenshot, watchPage } from './frame-browser.js';
import { startHostServer } from './frame-host-server.js';
import { randomQueue, removeTempDirs, startSignal, startWorker, TEST_IMAGE, type Running } from './harness.js';

const RUN_TIMEOUT = Number(process.env.PEERDOCK_E2E_RUN_TIMEOUT ?? 60_000);

describe('the frame in Chromium', () => {
  let signal: Running & { url: string };
  let worker: (Running & { dataDir: string; id: string }) | undefined;
  let context: BrowserContext;
  const queue = randomQueue();

  const frameUrl = (params: Record<string, unknown>) =>
    `${signal.url}/#?${Object.entries(params)
      .map(([key, value]) => `${key}=${encodeHashValue(value)}`)
      .join('&')}`;

  async function open(params: Record<string, unknown>): Promise<{ page: Page; problems: string[] }> {
    const page = await context.newPage();
    const { problems } = watchPage(page);
    await page.goto(frameUrl({ queue, ...params }));
    await page.locator('[data-testid=connection]').getByText(/1 worker/).waitFor({ timeout: 20_000 });
    return { page, problems };
  }

  async function finalPhase(page: Page): Promise<string> {
    const status = page.locator('[data-testid=status]');
    await status.and(page.locator('[data-phase=finished], [data-phase=failed], [data-phase=cancelled], [data-phase=timed-out]')).waitFor({
      timeout: RUN_TIMEOUT,
    });
    return (await status.getAttribute('data-phase'))!;
  }

  before(async () => {
    signal = await startSignal();
    worker = await startWorker(signal.url, queue, { id: 'frame-worker' });
    context = await launchChromium();
  });

  after(async () => {
    await context?.close();
    await worker?.stop();
    await signal?.stop();
    await removeTempDirs();
  });

  const helloJob = {
    image: TEST_IMAGE,
    command: 'sh -c "echo hello-out; echo hello-err >&2; printf \'result bytes\\n\' > /outputs/result.txt; mkdir -p /outputs/sub; echo nested > /outputs/sub/n.txt"',
  };

  test('runs the job from the hash: live logs apart, outputs listed, download has the bytes', async () => {
    const { page, problems } = await open({ job: helloJob });
    assert.equal(await page.locator('#image').inputValue(), TEST_IMAGE);
    await screenshot(page, '01-ready');
    await page.locator('[data-testid=run]').click();
    assert.equal(await finalPhase(page), 'finished', `${await page.locator('[data-testid=status]').innerText()}\n${problems.join('\n')}`);
    const logs = page.locator('[data-testid=logs]');
    await logs.locator('.stdout', { hasText: 'hello-out' }).waitFor();
    await logs.locator('.stderr', { hasText: 'hello-err' }).waitFor();
    assert.match(await page.locator('[data-testid=status-detail]').innerText(), /exit code 0/);
    // On loopback the page reaches the worker directly; the worker list says how.
    assert.match(await page.locator('[data-testid=workers]').innerText(), /· direct/);

    const outputs = page.locator('[data-testid=output]');
    await outputs.first().waitFor();
    assert.deepEqual(await outputs.evaluateAll((items) => items.map((item) => item.getAttribute('data-path')).sort()), ['result.txt', 'sub/n.txt']);

    const row = page.locator('[data-testid=output][data-path="result.txt"]');
    await row.getByRole('button', { name: 'Preview' }).click();
    await row.locator('.preview pre', { hasText: 'result bytes' }).waitFor();
    await screenshot(page, '02-finished');
    // Narrow (a small metaframe) and dark: one column, still readable.
    await page.setViewportSize({ width: 420, height: 900 });
    await screenshot(page, '02-finished-narrow');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize({ width: 1280, height: 860 });
    await screenshot(page, '02-finished-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    const [download] = await Promise.all([page.waitForEvent('download'), row.locator('a.download').click()]);
    assert.equal(download.suggestedFilename(), 'result.txt');
    assert.equal(await readFile((await download.path())!, 'utf8'), 'result bytes\n');

    const names: string[] = [];
    const both = new Promise<void>((resolve) =>
      page.on('download', (each) => {
        names.push(each.suggestedFilename());
        if (names.length === 2) resolve();
      }),
    );
    await page.locator('[data-testid=download-all]').click();
    await both;
    assert.deepEqual(names.sort(), ['n.txt', 'result.txt']);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('an input file added in the editor is transformed by the job', async () => {
    const { page } = await open({ job: { image: TEST_IMAGE, command: 'sh -c "tr a-z A-Z < /inputs/words.txt > /outputs/upper.txt"' } });
    await page.locator('[data-testid=add-input]').click();
    const file = page.locator('[data-testid=input-file]').last();
    await file.locator('input.name').fill('words.txt');
    await file.locator('textarea').fill('make me loud\nplease');
    // The hash follows the editor: the address is a shareable link to this exact job.
    await page.waitForFunction(() => location.hash.includes('inputs='));
    await page.locator('[data-testid=run]').click();
    assert.equal(await finalPhase(page), 'finished');
    const row = page.locator('[data-testid=output][data-path="upper.txt"]');
    const [download] = await Promise.all([page.waitForEvent('download'), row.locator('a.download').click()]);
    assert.equal(await readFile((await download.path())!, 'utf8'), 'MAKE ME LOUD\nPLEASE');
    await screenshot(page, '03-input-file');

    // The link alone reproduces the job, inputs included.
    const link = page.url();
    const again = await context.newPage();
    await again.goto(link);
    await again.locator('[data-testid=input-file] textarea').waitFor();
    assert.equal(await again.locator('[data-testid=input-file] textarea').inputValue(), 'make me loud\nplease');
    await again.close();
    await page.close();
  });

  test('an output this browser already holds (same bytes, another job) is not sent again', async () => {
    // The first test's job left result.txt = "result bytes\n" in the browser cache.
    const { page } = await open({ job: { image: TEST_IMAGE, command: `sh -c "printf 'result bytes\\n' > /outputs/again.txt; echo fresh > /outputs/fresh.txt"` } });
    await page.locator('[data-testid=run]').click();
    assert.equal(await finalPhase(page), 'finished');
    const reused = page.locator('[data-testid=output][data-path="again.txt"]');
    assert.equal(await reused.getAttribute('data-reused'), 'true');
    assert.equal(await page.locator('[data-testid=output][data-path="fresh.txt"]').getAttribute('data-reused'), 'false');
    const [download] = await Promise.all([page.waitForEvent('download'), reused.locator('a.download').click()]);
    assert.equal(await readFile((await download.path())!, 'utf8'), 'result bytes\n');
    await page.close();
  });

  test('previews an image output inline', async () => {
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const { page } = await open({ job: { image: TEST_IMAGE, command: `sh -c "echo ${png} | base64 -d > /outputs/dot.png"` } });
    await page.locator('[data-testid=run]').click();
    assert.equal(await finalPhase(page), 'finished');
    const row = page.locator('[data-testid=output][data-path="dot.png"]');
    await row.getByRole('button', { name: 'Preview' }).click();
    const image = row.locator('.preview img');
    await image.waitFor();
    assert.equal(await image.evaluate((img: HTMLImageElement) => img.decode().then(() => img.naturalWidth)), 1);
    await page.close();
  });

  test('a failing command shows its exit code', async () => {
    const { page } = await open({ job: { image: TEST_IMAGE, command: 'sh -c "printf \'\\033[31mred alert\\033[0m\\n\' >&2; exit 3"' } });
    // Keyboard only: Ctrl+Enter in the editor runs the job.
    await page.locator('#image').focus();
    await page.keyboard.press('Control+Enter');
    assert.equal(await finalPhase(page), 'finished');
    assert.match(await page.locator('[data-testid=status]').innerText(), /finished with an error/);
    assert.match(await page.locator('[data-testid=status-detail]').innerText(), /exit code 3/);
    // ANSI colours are rendered, not printed as escape codes.
    const red = page.locator('[data-testid=logs] .stderr span', { hasText: 'red alert' });
    await red.waitFor();
    assert.equal(await red.getAttribute('class'), 'ansi-red-fg');
    assert.notEqual(await red.evaluate((span) => getComputedStyle(span).color), await red.evaluate((span) => getComputedStyle(span.parentElement!).color));
    assert.doesNotMatch(await page.locator('[data-testid=logs]').innerText(), /\[31m/);
    await screenshot(page, '04-exit-code');
    await page.close();
  });

  test('cancels a long job', async () => {
    const { page } = await open({ job: { image: TEST_IMAGE, command: 'sh -c "seq 1 3000; echo started; sleep 60"' } });
    await page.locator('[data-testid=run]').click();
    const logs = page.locator('[data-testid=logs]');
    await logs.locator('.stdout', { hasText: 'started' }).waitFor({ timeout: RUN_TIMEOUT });
    await page.locator('[data-testid=status][data-phase=running]').waitFor();
    // Auto-scroll follows the end, stops when the user scrolls up, and comes back on request.
    const atEnd = () => logs.evaluate((log) => log.scrollTop + log.clientHeight >= log.scrollHeight - 30);
    assert.equal(await atEnd(), true);
    await logs.evaluate((log) => (log.scrollTop = 0));
    await page.getByRole('button', { name: '↓ Follow' }).click();
    assert.equal(await atEnd(), true);
    await screenshot(page, '05-running');
    await page.locator('[data-testid=cancel]').click();
    assert.equal(await finalPhase(page), 'cancelled');
    await page.locator('[data-testid=run]').waitFor();
    await page.close();
  });

  test('a malformed job parameter shows a specific message, not a blank page', async () => {
    const page = await context.newPage();
    await page.goto(`${signal.url}/#?queue=${queue}&job=not%%base64`);
    const error = page.locator('[data-testid=hash-error]');
    await error.waitFor();
    assert.match(await error.innerText(), /"job" parameter could not be read/);
    assert.ok(await page.locator('[data-testid=run]').isVisible());
    await screenshot(page, '06-malformed-hash');
    await page.close();
  });

  test('the element works on its own in another page, driven by attributes and methods', async () => {
    const page = await context.newPage();
    await page.goto(`${signal.url}/embed-example.html`);
    await page.locator('peerdock-job').evaluate(
      (element, { queue, image }) => {
        element.setAttribute('queue', queue);
        (element as unknown as { setJob(job: object): void }).setJob({ image, command: 'sh -c "echo embedded > /outputs/e.txt"' });
      },
      { queue, image: TEST_IMAGE },
    );
    await page.locator('[data-testid=connection]').getByText(/1 worker/).waitFor({ timeout: 20_000 });
    await page.locator('[data-testid=run]').click();
    await page.locator('#last-result', { hasText: 'last run: finished, exit code 0, outputs: e.txt' }).waitFor({ timeout: RUN_TIMEOUT });
    // It does not touch the host page's URL.
    assert.equal(new URL(page.url()).hash, '');
    await page.close();
  });

  test('inside a metapage: inputs become files, outputs come back by path, autostart reruns', async () => {
    const host = await startHostServer();
    try {
      const page = await context.newPage();
      const { problems } = watchPage(page);
      const job = {
        image: TEST_IMAGE,
        command:
          'sh -c "mkdir -p /outputs/nested; tr a-z A-Z < /inputs/text.txt > /outputs/upper.txt; cp /inputs/config.json /outputs/nested/config.json; cp /inputs/bytes.bin /outputs/bytes.bin"',
      };
      const frame = `${signal.url}/#?queue=${encodeHashValue(queue)}&job=${encodeHashValue(job)}&autostart=true`;
      debugNote(`host ${host.url}`);
      await page.goto(`${host.url}/?frame=${encodeURIComponent(frame)}`);
      debugNote('loaded');
      await page.evaluate(() => window.hostReady);
      debugNote('host ready');
      await page.evaluate(() => window.setFrameInputs({ 'text.txt': 'from the metapage', 'config.json': { a: 1 }, 'bytes.bin': new Uint8Array([0, 1, 2, 250, 255]) }));
      debugNote('inputs set');
      const outputs = await page
        .waitForFunction(() => (window.frameOutputs['upper.txt'] ? window.frameOutputs : undefined), undefined, { timeout: RUN_TIMEOUT })
        .catch(async (error) => {
          await screenshot(page, 'failed-metapage');
          throw error;
        });
      const values = (await outputs.jsonValue()) as Record<string, unknown>;
      assert.equal(values['upper.txt'], 'FROM THE METAPAGE');
      assert.equal(values['nested/config.json'], '{"a":1}');
      // Binary outputs travel in metapage's serialized blob form.
      const bytes = String(values['bytes.bin']);
      assert.match(bytes, /^data:[^;]*;blob=true;base64,/);
      assert.deepEqual([...Buffer.from(bytes.split(',')[1]!, 'base64')], [0, 1, 2, 250, 255]);
      await screenshot(page, '08-metapage');

      // autostart: new inputs run the job again.
      await page.evaluate(() => window.setFrameInputs({ 'text.txt': 'second round' }));
      debugNote('second inputs set');
      await page
        .waitForFunction(() => window.frameOutputs['upper.txt'] === 'SECOND ROUND', undefined, { timeout: RUN_TIMEOUT })
        .catch(async (error) => {
          await screenshot(page, 'failed-metapage-second');
          throw error;
        });
      assert.deepEqual(problems.filter((problem) => !/metaframe\.json|CORS|Failed to load resource/.test(problem)), []);
      await page.close();
    } finally {
      await host.close();
    }
  });

  test('a finished job shows from the browser cache after a reload, even with no worker online', async () => {
    const { page } = await open({ job: helloJob });
    // Same job id as the first test: shown from the cache before anything runs.
    const status = page.locator('[data-testid=status][data-phase=finished]');
    await status.waitFor();
    assert.match(await page.locator('[data-testid=status-detail]').innerText(), /from this browser’s cache/);
    await page.locator('[data-testid=output][data-path="result.txt"]').waitFor();

    await worker!.stop();
    worker = undefined;
    await page.reload();
    await page.locator('[data-testid=connection]').getByText(/no worker online/).waitFor({ timeout: 20_000 });
    await status.waitFor();
    const row = page.locator('[data-testid=output][data-path="result.txt"]');
    const [download] = await Promise.all([page.waitForEvent('download'), row.locator('a.download').click()]);
    assert.equal(await readFile((await download.path())!, 'utf8'), 'result bytes\n');
    await page.locator('[data-testid=logs] .stdout', { hasText: 'hello-out' }).waitFor();
    await screenshot(page, '07-cached-no-worker');
    await page.close();
  });
});
