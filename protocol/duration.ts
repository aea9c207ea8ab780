import { PeerdockError } from './errors.js';

const unitSeconds: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a duration such as `90`, `30s`, `10m`, `1h30m` or `1.5h` into whole seconds (rounded up,
 * at least 1). A bare number is seconds.
 */
export function parseDuration(value: string | number, what = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) {
      throw new PeerdockError('ERR_INVALID_FLAG', `${what} must be a positive number of seconds, got ${value}`);
    }
    return Math.max(1, Math.ceil(value));
  }
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return parseDuration(Number(text), what);
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let seconds = 0;
  let consumed = 0;
  for (let match = part.exec(text); match; match = part.exec(text)) {
    seconds += Number(match[1]) * unitSeconds[match[2]!]!;
    consumed = part.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length || seconds <= 0) {
    throw new PeerdockError(
      'ERR_INVALID_FLAG',
      `${what} "${value}" is not a duration: use a number of seconds or units like 30s, 10m, 1h30m`,
    );
  }
  return Math.max(1, Math.ceil(seconds));
}

export function formatDuration(milliseconds: number): string {
  if (milliseconds < 1000) return `${Math.round(milliseconds)}ms`;
  // Round first, so 59.99 s reads 1m0s and 119.6 s reads 2m0s, never 60.0s or 1m60s.
  const tenths = Math.round(milliseconds / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)}s`;
  const seconds = Math.round(milliseconds / 1000);
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}
