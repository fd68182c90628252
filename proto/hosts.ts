/** Host names both sides judge alike (browser-safe: no Node built-ins). */

/**
 * 127.0.0.0/8, ::1 and localhost, with or without IPv6 brackets: traffic that never
 * leaves the machine. The SDK sends a token over plain ws:// only to these; a node warns
 * when it listens on anything else without TLS.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost" || host === "::1") return true;
  // URL parsing has already turned "127.1" or "0x7f.1" into dotted decimal.
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
