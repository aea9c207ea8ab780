import { css } from 'lit';

export const styles = css`
  :host {
    --bg: #f7f7f8;
    --panel: #ffffff;
    --border: #dcdde1;
    --text: #1d1f24;
    --muted: #666b76;
    --accent: #2563eb;
    --accent-text: #ffffff;
    --ok: #15803d;
    --warn: #b45309;
    --bad: #b91c1c;
    --log-bg: #16181d;
    --log-text: #e6e6e6;
    --stderr: #ff9b8f;
    --field: #ffffff;
    --mono: ui-monospace, 'SFMono-Regular', 'JetBrains Mono', Menlo, Consolas, 'Liberation Mono', monospace;
    display: block;
    box-sizing: border-box;
    container-type: inline-size;
    color: var(--text);
    background: var(--bg);
    font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
  }
  @media (prefers-color-scheme: dark) {
    :host {
      --bg: #131418;
      --panel: #1b1d23;
      --border: #2e313a;
      --text: #e4e5e9;
      --muted: #9a9fab;
      --accent: #3b82f6;
      --ok: #4ade80;
      --warn: #fbbf24;
      --bad: #f87171;
      --log-bg: #0d0e11;
      --field: #14161b;
    }
  }
  *,
  *::before,
  *::after {
    box-sizing: border-box;
  }
  header {
    display: flex;
    flex-wrap: wrap;
    align-items: center;
    gap: 8px 12px;
    padding: 10px 14px;
    border-bottom: 1px solid var(--border);
    background: var(--panel);
  }
  .brand {
    font-weight: 650;
    letter-spacing: 0.2px;
    margin-right: 4px;
  }
  .brand small {
    color: var(--muted);
    font-weight: 400;
  }
  .queue {
    display: flex;
    flex: 1 1 260px;
    gap: 6px;
    min-width: 0;
  }
  .queue input {
    flex: 1;
    min-width: 0;
    font-family: var(--mono);
    font-size: 13px;
  }
  .conn {
    display: inline-flex;
    align-items: center;
    gap: 6px;
    color: var(--muted);
    font-size: 13px;
    white-space: nowrap;
  }
  .dot {
    width: 9px;
    height: 9px;
    border-radius: 50%;
    background: var(--muted);
    flex: none;
  }
  .dot.ok {
    background: var(--ok);
  }
  .dot.warn {
    background: var(--warn);
  }
  .dot.bad {
    background: var(--bad);
  }
  .dot.busy {
    background: var(--accent);
    animation: pulse 1.2s ease-in-out infinite;
  }
  @keyframes pulse {
    50% {
      opacity: 0.35;
    }
  }
  .workers {
    display: flex;
    flex-wrap: wrap;
    gap: 6px;
    width: 100%;
    font-size: 12px;
    color: var(--muted);
  }
  .workers code.cmd {
    font-family: var(--mono);
    user-select: all;
    overflow-wrap: anywhere;
  }
  textarea.command {
    min-height: 0;
    field-sizing: content;
    max-height: 160px;
  }
  .worker {
    font-family: var(--mono);
    border: 1px solid var(--border);
    border-radius: 999px;
    padding: 1px 8px;
  }
  .notes {
    padding: 0 14px;
  }
  .note {
    margin: 10px 0 0;
    padding: 8px 12px;
    border-radius: 6px;
    border: 1px solid var(--border);
    background: var(--panel);
    font-size: 13px;
  }
  .note.error {
    border-color: var(--bad);
    color: var(--bad);
  }
  main {
    display: grid;
    grid-template-columns: minmax(280px, 400px) minmax(0, 1fr);
    gap: 14px;
    padding: 14px;
    align-items: start;
  }
  @container (max-width: 760px) {
    main {
      grid-template-columns: minmax(0, 1fr);
    }
    /* A small metaframe: what the job is doing comes first, the editor after it. */
    .run {
      order: -1;
    }
  }
  section {
    background: var(--panel);
    border: 1px solid var(--border);
    border-radius: 8px;
    padding: 12px;
    min-width: 0;
  }
  h2 {
    font-size: 12px;
    font-weight: 600;
    text-transform: uppercase;
    letter-spacing: 0.6px;
    color: var(--muted);
    margin: 0 0 8px;
    display: flex;
    align-items: center;
    gap: 8px;
  }
  h2 .spacer {
    flex: 1;
  }
  label {
    display: block;
    font-size: 12px;
    color: var(--muted);
    margin: 10px 0 3px;
  }
  label:first-of-type {
    margin-top: 0;
  }
  input,
  textarea {
    width: 100%;
    font: inherit;
    color: var(--text);
    background: var(--field);
    border: 1px solid var(--border);
    border-radius: 6px;
    padding: 6px 8px;
  }
  input.mono,
  textarea {
    font-family: var(--mono);
    font-size: 13px;
  }
  textarea {
    resize: vertical;
    min-height: 70px;
  }
  input:focus-visible,
  textarea:focus-visible,
  button:focus-visible,
  a:focus-visible,
  summary:focus-visible {
    outline: 2px solid var(--accent);
    outline-offset: 1px;
  }
  button,
  a.button {
    font: inherit;
    font-size: 13px;
    color: var(--text);
    background: var(--panel);
    border: 1px solid var(--border);
    border-radius: 6px;
    padding: 5px 10px;
    cursor: pointer;
    white-space: nowrap;
    text-decoration: none;
    display: inline-flex;
    align-items: center;
    gap: 4px;
  }
  button:hover:not(:disabled),
  a.button:hover {
    border-color: var(--muted);
  }
  button:disabled {
    opacity: 0.5;
    cursor: default;
  }
  button.primary {
    background: var(--accent);
    border-color: var(--accent);
    color: var(--accent-text);
    font-weight: 600;
    padding: 6px 16px;
  }
  button.small,
  a.small {
    padding: 2px 8px;
    font-size: 12px;
  }
  button.icon {
    padding: 2px 7px;
    color: var(--muted);
  }
  .row {
    display: flex;
    gap: 6px;
    align-items: center;
    margin-top: 6px;
  }
  .row input {
    min-width: 0;
  }
  .env-key {
    flex: 0 0 38%;
  }
  .file {
    border: 1px solid var(--border);
    border-radius: 6px;
    margin-top: 8px;
    padding: 6px;
  }
  .file .row {
    margin: 0 0 6px;
  }
  .file .meta {
    font-size: 12px;
    color: var(--muted);
    white-space: nowrap;
  }
  .hint {
    font-size: 12px;
    color: var(--muted);
  }
  .actions {
    display: flex;
    gap: 8px;
    flex-wrap: wrap;
    margin-top: 8px;
  }
  .run {
    display: flex;
    flex-direction: column;
    gap: 14px;
    min-width: 0;
  }
  .statusbar {
    display: flex;
    align-items: center;
    gap: 10px;
    flex-wrap: wrap;
  }
  .status {
    flex: 1 1 240px;
    display: flex;
    align-items: center;
    gap: 8px;
    min-width: 0;
    font-weight: 550;
  }
  .status .text {
    overflow-wrap: anywhere;
  }
  .status .sub {
    color: var(--muted);
    font-weight: 400;
    font-variant-numeric: tabular-nums;
  }
  .status.finished .text {
    color: var(--ok);
  }
  .status.nonzero .text,
  .status.failed .text,
  .status.timed-out .text {
    color: var(--bad);
  }
  .status.cancelled .text {
    color: var(--warn);
  }
  .progress {
    height: 4px;
    border-radius: 2px;
    background: var(--border);
    overflow: hidden;
    margin-top: 8px;
  }
  .progress > div {
    height: 100%;
    background: var(--accent);
    transition: width 0.2s;
  }
  .progress.indeterminate > div {
    width: 30% !important;
    animation: slide 1.2s ease-in-out infinite;
  }
  @keyframes slide {
    from {
      margin-left: -30%;
    }
    to {
      margin-left: 100%;
    }
  }
  .jobid {
    font-family: var(--mono);
    font-size: 11px;
    color: var(--muted);
    margin-top: 6px;
    overflow-wrap: anywhere;
  }
  .logs {
    position: relative;
  }
  pre.log {
    margin: 0;
    background: var(--log-bg);
    color: var(--log-text);
    font: 12.5px/1.5 var(--mono);
    padding: 10px 12px;
    border-radius: 6px;
    height: clamp(180px, 42vh, 560px);
    overflow: auto;
    white-space: pre-wrap;
    overflow-wrap: anywhere;
    tab-size: 4;
  }
  pre.log .stderr {
    color: var(--stderr);
  }
  pre.log .ansi-black-fg { color: #5c6370; }
  pre.log .ansi-black-bg { background: #5c6370; }
  pre.log .ansi-red-fg { color: #ef6b73; }
  pre.log .ansi-red-bg { background: #ef6b73; }
  pre.log .ansi-green-fg { color: #8fce6a; }
  pre.log .ansi-green-bg { background: #8fce6a; }
  pre.log .ansi-yellow-fg { color: #e5c07b; }
  pre.log .ansi-yellow-bg { background: #e5c07b; }
  pre.log .ansi-blue-fg { color: #61afef; }
  pre.log .ansi-blue-bg { background: #61afef; }
  pre.log .ansi-magenta-fg { color: #d98ae0; }
  pre.log .ansi-magenta-bg { background: #d98ae0; }
  pre.log .ansi-cyan-fg { color: #56c7d6; }
  pre.log .ansi-cyan-bg { background: #56c7d6; }
  pre.log .ansi-white-fg { color: #dcdfe4; }
  pre.log .ansi-white-bg { background: #dcdfe4; }
  pre.log .ansi-bright-black-fg { color: #7f8794; }
  pre.log .ansi-bright-black-bg { background: #7f8794; }
  pre.log .ansi-bright-red-fg { color: #ff8a91; }
  pre.log .ansi-bright-red-bg { background: #ff8a91; }
  pre.log .ansi-bright-green-fg { color: #a8e687; }
  pre.log .ansi-bright-green-bg { background: #a8e687; }
  pre.log .ansi-bright-yellow-fg { color: #f3d58f; }
  pre.log .ansi-bright-yellow-bg { background: #f3d58f; }
  pre.log .ansi-bright-blue-fg { color: #85c4ff; }
  pre.log .ansi-bright-blue-bg { background: #85c4ff; }
  pre.log .ansi-bright-magenta-fg { color: #eaa6f0; }
  pre.log .ansi-bright-magenta-bg { background: #eaa6f0; }
  pre.log .ansi-bright-cyan-fg { color: #7fdbe8; }
  pre.log .ansi-bright-cyan-bg { background: #7fdbe8; }
  pre.log .ansi-bright-white-fg { color: #ffffff; }
  pre.log .ansi-bright-white-bg { background: #ffffff; }
  pre.log .empty {
    color: #8a8f99;
    font-style: italic;
  }
  .jump {
    position: absolute;
    right: 18px;
    bottom: 12px;
  }
  ul.outputs {
    list-style: none;
    margin: 0;
    padding: 0;
  }
  ul.outputs li {
    border-top: 1px solid var(--border);
    padding: 6px 0;
  }
  ul.outputs li:first-child {
    border-top: 0;
  }
  .out {
    display: flex;
    align-items: center;
    gap: 8px;
    min-width: 0;
  }
  .out .path {
    flex: 1;
    font-family: var(--mono);
    font-size: 13px;
    min-width: 0;
    overflow: hidden;
    text-overflow: ellipsis;
    white-space: nowrap;
  }
  .out .size {
    color: var(--muted);
    font-size: 12px;
    font-variant-numeric: tabular-nums;
    white-space: nowrap;
  }
  .preview {
    margin-top: 6px;
  }
  .preview pre {
    margin: 0;
    max-height: 260px;
    overflow: auto;
    background: var(--field);
    border: 1px solid var(--border);
    border-radius: 6px;
    padding: 8px;
    font: 12px/1.45 var(--mono);
    white-space: pre-wrap;
    overflow-wrap: anywhere;
  }
  .preview img {
    max-width: 100%;
    max-height: 320px;
    border: 1px solid var(--border);
    border-radius: 6px;
    background: repeating-conic-gradient(#8882 0 25%, transparent 0 50%) 0 0 / 16px 16px;
  }
  .empty-state {
    color: var(--muted);
    font-size: 13px;
  }
  .sr-only {
    position: absolute;
    width: 1px;
    height: 1px;
    overflow: hidden;
    clip: rect(0 0 0 0);
    white-space: nowrap;
  }
`;
