// Builds the frame (frame/) into dist/frame/, served by `peerdock signal` and `peerdock dev`.
// simple-peer expects Node's `global`, `process` and `Buffer`: see shared/design.md.
import * as esbuild from 'esbuild';
import { cp, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
const outdir = `${root}dist/frame`;
const watch = process.argv.includes('--watch');

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
await cp(`${root}frame/static`, outdir, { recursive: true });

const options = {
  entryPoints: { 'peerdock-job': `${root}frame/index.ts` },
  outdir,
  bundle: true,
  format: 'esm',
  // The metaframe code (@metapages/metapage) loads only inside an iframe, as a separate chunk.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: true,
  minify: !watch,
  define: { global: 'globalThis', 'process.env.NODE_DEBUG': 'false' },
  inject: [`${root}frame/node-shims.ts`],
  logLevel: 'warning',
};

if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
  console.log(`watching frame/ → ${outdir}`);
} else {
  await esbuild.build(options);
}
