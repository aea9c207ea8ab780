/**
 * A host page for the frame's metapage test (bundled by esbuild in the test): embeds the frame as
 * a metaframe with @metapages/metapage, and exposes `setFrameInputs` and the collected outputs.
 */
import { Metapage } from '@metapages/metapage';

declare global {
  interface Window {
    hostReady: Promise<void>;
    frameOutputs: Record<string, unknown>;
    setFrameInputs: (inputs: Record<string, unknown>) => void;
  }
}

window.frameOutputs = {};
window.hostReady = (async () => {
  const frameUrl = new URLSearchParams(location.search).get('frame');
  if (!frameUrl) throw new Error('host page needs ?frame=<url>');
  // `microphone` only so Chromium gathers loopback ICE candidates inside the frame in tests.
  const metapage = await Metapage.from({
    version: '1',
    metaframes: { peerdock: { url: frameUrl, allow: 'microphone; clipboard-write' } },
  });
  const iframe = await metapage.getMetaframe('peerdock')!.iframe;
  iframe.style.cssText = 'width: 100%; height: 720px; border: 1px solid #ccc;';
  document.getElementById('frame')!.appendChild(iframe);
  metapage.onOutputs((outputs: Record<string, Record<string, unknown>>) => {
    Object.assign(window.frameOutputs, outputs.peerdock ?? {});
  });
  window.setFrameInputs = (inputs) => metapage.setInputs({ peerdock: inputs });
})();
