import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The built frame (`npm run build` writes it), if there is one. */
export async function frameDir(): Promise<string | undefined> {
  const dir = fileURLToPath(new URL('../dist/frame/', import.meta.url));
  const index = await stat(`${dir}index.html`).catch(() => undefined);
  return index?.isFile() ? dir : undefined;
}
