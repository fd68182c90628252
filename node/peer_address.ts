/**
 * A peer's address, parsed by one rule wherever one arrives (`--peers`, `cluster add`,
 * a peer's hello): `host:port` or `[IPv6]:port`, the port 1..65535. An IPv6 host keeps
 * its brackets, so `${host}:${port}` is again a valid address (hellos, status and
 * peers.json carry that text); the dialer uses the host as it is.
 */

/** Node ids as `--id`, `--peers` and `cluster add` accept them. */
export function isValidNodeId(id: string): boolean {
  return /^[a-zA-Z0-9_.-]{1,64}$/.test(id);
}

export type ParsedPeerAddress =
  | { host: string; port: number }
  /** `badPort`: the text is host:port, but not with a port one can dial. */
  | { error: string; badPort: boolean };

/** `host:port` or `[v6]:port` as `{ host, port }`, or `{ error }` saying what is wrong. */
export function parsePeerAddress(text: string): ParsedPeerAddress {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:=,[\]/]+):(\d+)$/.exec(text);
  if (!m) return { error: "not host:port (an IPv6 host in brackets: [::1]:7421)", badPort: false };
  const port = Number(m[2]);
  if (port === 0) return { error: "needs a real port, not 0", badPort: true };
  if (port > 65535) return { error: `port ${m[2]} is above 65535`, badPort: true };
  return { host: m[1]!, port };
}

/** A host as a URL or `host:port` needs it: an IPv6 literal in brackets (once). */
export function bracketedHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** Longest client URL a node announces or keeps (`--advertise-client-url`, peer hellos). */
export const MAX_CLIENT_URL_LENGTH = 512;

/** A `ws://` or `wss://` URL of bounded length: what a node may announce as its client URL. */
export function isClientUrl(url: string): boolean {
  return (
    url.length > 0 && url.length <= MAX_CLIENT_URL_LENGTH && /^wss?:\/\/[^\s/]+(\/\S*)?$/.test(url)
  );
}
