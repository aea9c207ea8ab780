/** Serves the metapage host page (e2e/frame-host.ts, bundled) on its own loopback origin. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { ROOT } from './harness.js';

const HOST_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>metapage host</title>
<script type="module" src="/host.js"></script></head>
<body style="margin:0;font:14px system-ui;padding:12px"><h1 style="font-size:16px">A metapage embedding peerdock</h1><div id="frame"></div></body></html>`;

export async function startHostServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const bundle = await esbuild.build({
    entryPoints: [join(ROOT, 'e2e', 'frame-host.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    define: { global: 'globalThis' },
    logLevel: 'warning',
  });
  const script = bundle.outputFiles[0]!.contents;
  const server: Server = createServer((request, response) => {
    if (request.url?.startsWith('/host.js')) {
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      response.end(script);
    } else {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(HOST_HTML);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // the browser keeps connections alive
      }),
  };
}
