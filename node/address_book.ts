/**
 * Peer addresses this node learned at runtime, each from a committed `streamkv cluster
 * add` entry (the address travels in its context; never from a hello), kept in
 * `<data>/peers.json` so a restarted node still reaches members that are not in its
 * `--peers`.
 *
 * Written whole through a temporary file, fsynced, then renamed (and the directory
 * fsynced), so a crash leaves the old or the new book, never a torn one.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { PeerAddress } from "./config.js";

const FILE = "peers.json";

/** The learned addresses ([] when none were learned yet or the file is unreadable). */
export function loadAddressBook(dataDir: string): PeerAddress[] {
  let text: string;
  try {
    text = readFileSync(join(dataDir, FILE), "utf8");
  } catch {
    return [];
  }
  try {
    const parsed = JSON.parse(text) as { peers?: unknown };
    if (!Array.isArray(parsed.peers)) return [];
    return parsed.peers.filter(
      (p): p is PeerAddress =>
        typeof p?.id === "string" &&
        typeof p?.host === "string" &&
        Number.isSafeInteger(p?.port) &&
        p.port > 0 &&
        p.port < 65536,
    );
  } catch {
    return [];
  }
}

/** `--peers` first (the operator's word wins), then learned members not in it. */
export function mergePeers(configured: PeerAddress[], learned: PeerAddress[]): PeerAddress[] {
  const ids = new Set(configured.map((p) => p.id));
  return [...configured, ...learned.filter((p) => !ids.has(p.id))];
}

/** Records `peer` (replacing an older address of its id); durable when it returns. */
export function rememberPeer(dataDir: string, peer: PeerAddress): void {
  const book = loadAddressBook(dataDir).filter((p) => p.id !== peer.id);
  book.push({ id: peer.id, host: peer.host, port: peer.port });
  const path = join(dataDir, FILE);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, `${JSON.stringify({ peers: book })}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dataDir, "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
