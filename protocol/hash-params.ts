/**
 * URL hash parameters in the encoding of @metapages/hash-query (what container.mtfm.io links
 * use): a JSON value is base64(encodeURIComponent(JSON.stringify(value))); the hash reads
 * `#?key=value&key=value`.
 */
export function encodeHashValue(value: unknown): string {
  const text = typeof value === 'string' ? value : btoa(encodeURIComponent(JSON.stringify(value)));
  return encodeURIComponent(text);
}
