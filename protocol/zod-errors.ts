import type { z } from 'zod';

/** One readable line from a zod error: `path: message; path: message`, record keys included. */
export function describeZodError(error: z.ZodError): string {
  return error.issues.map(describeIssue).join('; ');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join('.') || 'value';
  // A bad record key (an input name, an env name) hides the real reason one level down.
  if (issue.code === 'invalid_key' && issue.issues.length > 0) {
    return `${path}: ${issue.issues.map((inner) => inner.message).join(', ')}`;
  }
  return `${path}: ${issue.message}`;
}
