/**
 * Inside a metapage: every metaframe input becomes a file under /inputs (strings as text, JSON
 * values as JSON, blobs and typed arrays as bytes, as metapage deserializes them); every file the
 * job leaves in /outputs becomes an output named by its relative path (text as a string, binary
 * in metapage's serialized data-URL blob form). With autostart, a change of inputs runs again.
 */
import { Metaframe, valueToFile } from '@metapages/metapage';
import { looksLikeText } from '../client/browser-files.js';
import { toBase64 } from '../protocol/encoding.js';
import type { PeerdockJob, RunJobOutcome } from './peerdock-job.js';

export function connectMetaframe(element: PeerdockJob): Metaframe {
  const metaframe = new Metaframe();
  let last = '';
  // Autostart waits for the metapage's first inputs, so the first run is not one without them.
  element.holdAutostart = true;
  void metaframe.connected().then(() =>
    setTimeout(() => {
      element.holdAutostart = false;
      if (element.autostart) element.requestAutostart();
    }, 0),
  );
  metaframe.onInputs(async (inputs: Record<string, unknown>) => {
    const files: Record<string, Blob> = {};
    for (const [name, value] of Object.entries(inputs ?? {})) {
      if (value === undefined || value === null) continue;
      files[name] = await valueToFile(value, name.split('/').pop() || name);
    }
    element.setExternalInputs(files);
    const signature = JSON.stringify(Object.entries(files).map(([name, blob]) => [name, blob.size, blob.type]));
    if (element.autostart && (signature !== last || !element.running)) element.requestAutostart();
    last = signature;
  });
  element.addEventListener('peerdock-result', (event) => {
    void publishOutputs(metaframe, (event as CustomEvent<RunJobOutcome>).detail);
  });
  return metaframe;
}

async function publishOutputs(metaframe: Metaframe, outcome: RunJobOutcome): Promise<void> {
  const outputs: Record<string, unknown> = {};
  for (const output of outcome.outputs) {
    if (!output.blob) continue;
    outputs[output.path] = (await looksLikeText(output.blob)) ? await output.blob.text() : await blobDataUrl(output.blob);
  }
  if (Object.keys(outputs).length > 0) await metaframe.setOutputs(outputs);
}

/** metapage's serialized Blob: `data:<type>;blob=true;base64,<bytes>` (chunked, any size). */
export async function blobDataUrl(blob: Blob): Promise<string> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  return `data:${blob.type || 'application/octet-stream'};blob=true;base64,${toBase64(bytes)}`;
}
