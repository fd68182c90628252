/**
 * What `connect` checks about its servers before it opens any socket: the URLs, the
 * `tls` option (Node only: a browser verifies `wss://` with its own certificate store),
 * and the rule that a credential never travels in clear text: a token is not sent over
 * plain `ws://` to a host other than loopback unless the caller says `insecure: true`.
 * Browser-safe: no Node built-ins.
 */
import { isLoopbackHost, KvError } from "../proto/index.js";
import type { ConnectOptions, Pem, TlsOptions } from "./types.js";

export { isLoopbackHost };

/** PEM text or bytes with a `-----BEGIN` line (DER, a path or a typo is not). */
function isPem(v: unknown): v is Pem {
  const text =
    typeof v === "string" ? v : v instanceof Uint8Array ? new TextDecoder().decode(v) : "";
  return text.includes("-----BEGIN ");
}

/** A runtime whose WebSocket is the browser's (no way to pass certificates to it). */
function inBrowser(): boolean {
  return typeof (globalThis as { document?: unknown }).document !== "undefined";
}

function checkTls(tls: TlsOptions, urls: readonly URL[]): void {
  if (inBrowser()) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "connect: the tls option works only in Node; in a browser use wss:// and the browser's own certificate store",
    );
  }
  if (typeof tls !== "object" || tls === null) {
    throw new KvError("INVALID_ARGUMENT", "connect: tls must be an object { ca?, cert?, key? }");
  }
  const cas = Array.isArray(tls.ca) ? tls.ca : tls.ca === undefined ? [] : [tls.ca];
  for (const [name, value] of [
    ...cas.map((c) => ["ca", c] as const),
    ["cert", tls.cert],
    ["key", tls.key],
  ] as const) {
    if (value !== undefined && !isPem(value)) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `connect: tls.${name} must be PEM text or bytes (with a -----BEGIN line), not a file name`,
      );
    }
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "connect: tls.cert and tls.key go together (a client certificate and its private key)",
    );
  }
  const plain = urls.find((u) => u.protocol === "ws:");
  if (plain) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `connect: the tls option is for wss:// servers, but ${plain.href} is plain ws://`,
    );
  }
}

/** Throws the KvError `connect` fails with, before any socket is opened. */
export function checkTransport(servers: readonly string[], options: ConnectOptions): void {
  if (servers.length === 0) throw new KvError("INVALID_ARGUMENT", "connect: no servers given");
  const urls = servers.map((s) => {
    let url: URL | undefined;
    try {
      url = new URL(s);
    } catch {}
    if (!url || (url.protocol !== "ws:" && url.protocol !== "wss:")) {
      // No scheme is guessed: plain ws:// for a TLS node would fail later and less clearly.
      const bare = /^[^/]+:\d+$/.test(s) || /^\[[^\]]+\]:\d+$/.test(s);
      throw new KvError(
        "INVALID_ARGUMENT",
        bare
          ? `connect: server "${s}" has no scheme: use ws://${s} (or wss://${s} for a node started with --tls-cert)`
          : `connect: server "${s}" is not a ws:// or wss:// URL`,
      );
    }
    return url;
  });
  if (options.tls !== undefined) checkTls(options.tls, urls);
  const hasCredential = typeof options.token === "string" && options.token !== "";
  if (!hasCredential || options.insecure === true) return;
  const exposed = urls.find((u) => u.protocol === "ws:" && !isLoopbackHost(u.hostname));
  if (exposed) {
    throw new KvError(
      "INSECURE_TRANSPORT",
      `connect: refusing to send a token in clear text to ${exposed.host} over ws://; use wss:// (a node started with --tls-cert), or pass insecure: true (the CLI: --insecure) if the network is trusted`,
    );
  }
}
