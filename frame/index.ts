// The frame's bundle: defines <peerdock-job>; inside a metapage, also connects it as a metaframe.
import { PeerdockJob } from './peerdock-job.js';

export { PeerdockJob };

if (!customElements.get('peerdock-job')) customElements.define('peerdock-job', PeerdockJob);

declare global {
  interface HTMLElementTagNameMap {
    'peerdock-job': PeerdockJob;
  }
}

function isInsideIframe(): boolean {
  try {
    return window.self !== window.top;
  } catch {
    return true; // cross-origin parent
  }
}

// The page served at / (a <peerdock-job metaframe> in it) joins its metapage when embedded.
if (isInsideIframe()) {
  const connect = () => {
    const element = document.querySelector<PeerdockJob>('peerdock-job[metaframe]');
    if (element) void import('./metaframe.js').then(({ connectMetaframe }) => connectMetaframe(element));
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', connect, { once: true });
  else connect();
}
