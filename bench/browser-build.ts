/** Bundles bench/browser-entry.ts for Chromium with the frame's esbuild options (esbuild.config.mjs). */
import * as esbuild from 'esbuild';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './lib.js';

export async function buildBrowserBench(outdir: string): Promise<void> {
  await esbuild.build({
    entryPoints: { bench: join(ROOT, 'bench', 'browser-entry.ts') },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    sourcemap: false,
    minify: true,
    define: { global: 'globalThis', 'process.env.NODE_DEBUG': 'false' },
    inject: [join(ROOT, 'frame', 'node-shims.ts')],
    logLevel: 'warning',
  });
  await writeFile(
    join(outdir, 'index.html'),
    '<!doctype html><html><head><meta charset="utf-8"><title>bench</title><script type="module" src="./bench.js"></script></head><body>peerdock bench</body></html>\n',
  );
}
