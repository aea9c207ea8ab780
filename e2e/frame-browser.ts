/**
 * Real Chromium for the frame's tests: Debian's /usr/bin/chromium driven by playwright-core
 * (never a downloaded browser), with the flags that let WebRTC gather loopback candidates.
 */
import { appendFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT, tempDir } from './harness.js';

export const CHROMIUM = process.env.PEERDOCK_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Headless Chromium on these machines (see shared/design.md): no sandbox as root, nothing that
 * reaches out to Google. Add --allow-loopback-in-peer-connection (and grant the microphone) for
 * WebRTC on a loopback-only host.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const SCREENSHOTS = join(ROOT, 'test-results', 'screenshots');

export async function launchChromium(): Promise<BrowserContext> {
  const userDataDir = await tempDir('chromium');
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, '--allow-loopback-in-peer-connection'],
    // Without a media permission Chromium gathers no ICE candidate on a loopback-only host.
    permissions: ['microphone', 'clipboard-read', 'clipboard-write'],
    viewport: { width: 1280, height: 860 },
    acceptDownloads: true,
  });
  return context;
}

/** Collects console errors and page errors, so a failing test can show them. */
export function watchPage(page: Page): { problems: string[] } {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (process.env.PEERDOCK_E2E_CONSOLE) appendFileSync(process.env.PEERDOCK_E2E_CONSOLE, `[browser ${message.type()}] ${message.text()}\n`);
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  return { problems };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** With PEERDOCK_E2E_CONSOLE=<file>, notes (and the pages' console) go to that file. */
export function debugNote(text: string): void {
  if (process.env.PEERDOCK_E2E_CONSOLE) appendFileSync(process.env.PEERDOCK_E2E_CONSOLE, `${text}\n`);
}
