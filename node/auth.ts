/**
 * Who a client is and what it may do (issue 9, "Credentials with permissions").
 *
 * A client proves who it is with the token in its hello. The node knows tokens only
 * by their SHA-256 (a tokens file never holds a secret an attacker could reuse) and
 * compares digests in constant time. A token names a principal with permissions:
 *
 * - `read`: bucket patterns whose values, keys, history and watches it may read;
 * - `write`: bucket patterns it may put/create/update/delete/purge in;
 * - `admin`: bucket create/delete, purgeDeletes, the cluster's details (peer addresses,
 *   cluster id) and membership (transfer/add/remove). `admin` does not imply read or
 *   write: a root token lists all three.
 *
 * `bucket_info` needs either. A pattern is a bucket name, or a prefix ending in `*`
 * (`orders*`, `*`). Three modes:
 * open (no token configured: a lone dev node, everyone is the `anonymous` root), one
 * shared `--token` (its holder is the `token` root), or a tokens file (`--tokens-file`,
 * re-read on SIGHUP by the server; a bad file keeps the previous one in force).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { type ClientRequest, KvError, type NodeStatus } from "../proto/index.js";

export interface Principal {
  /** Shown in logs and audit lines, never the token. */
  readonly name: string;
  readonly admin: boolean;
  readonly read: readonly string[];
  readonly write: readonly string[];
  /**
   * Request ids are scoped to the principal when several exist, so one client cannot
   * replay (or learn) another's result by reusing its request id.
   */
  readonly scopeRequestIds: boolean;
}

export interface TokenEntry {
  name: string;
  /** Hex SHA-256 of the token. */
  sha256: string;
  admin?: boolean;
  read?: string[];
  write?: string[];
}

const ROOT = { admin: true, read: ["*"], write: ["*"] } as const;
const NAME = /^[a-zA-Z0-9_.@-]{1,64}$/;
const PATTERN = /^(\*|[a-zA-Z0-9_-]{1,64}\*?)$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/;

export function sha256Hex(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** A new random token (32 bytes, base64url) for `streamkv token create`. */
export function newToken(): string {
  // A prefix secret scanners can match, and a token never starts with "-" (a CLI flag).
  return `skv_${randomBytes(32).toString("base64url")}`;
}

export class Authenticator {
  private constructor(
    private entries: readonly { digest: Buffer; principal: Principal }[],
    /** Open mode: no token configured, every client is the anonymous root. */
    readonly open: boolean,
  ) {}

  /** Every client is the anonymous root (a node started without any token). */
  static openAccess(): Authenticator {
    return new Authenticator([], true);
  }

  /** One shared token; whoever holds it may do everything. */
  static sharedToken(token: string): Authenticator {
    if (token === "") throw new KvError("INVALID_CONFIG", "the shared token must not be empty");
    return new Authenticator(
      [
        {
          digest: Buffer.from(sha256Hex(token), "hex"),
          principal: { name: "token", ...ROOT, scopeRequestIds: false },
        },
      ],
      false,
    );
  }

  /** The tokens of a tokens file's text (see `parseTokensFile`). */
  static fromEntries(entries: readonly TokenEntry[]): Authenticator {
    return new Authenticator(
      entries.map((e) => ({
        digest: Buffer.from(e.sha256, "hex"),
        principal: {
          name: e.name,
          admin: e.admin === true,
          read: [...(e.read ?? [])],
          write: [...(e.write ?? [])],
          scopeRequestIds: true,
        },
      })),
      false,
    );
  }

  static fromFile(path: string): Authenticator {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new KvError(
        "INVALID_CONFIG",
        `--tokens-file ${path}: cannot read: ${(err as Error).message}`,
      );
    }
    return Authenticator.fromEntries(parseTokensFile(text, path));
  }

  /** Takes the tokens of `next` (a SIGHUP reload); sessions keep the principal they have. */
  replaceWith(next: Authenticator): void {
    this.entries = next.entries;
  }

  get tokenCount(): number {
    return this.entries.length;
  }

  /** The principal the token names, or undefined (then the client is refused). */
  authenticate(token: string | undefined): Principal | undefined {
    if (this.open) return { name: "anonymous", ...ROOT, scopeRequestIds: false };
    if (token === undefined || token === "") return undefined;
    const digest = createHash("sha256").update(token, "utf8").digest();
    let found: Principal | undefined;
    // Compare against every entry, so the time taken does not say which one matched.
    for (const e of this.entries) {
      if (timingSafeEqual(digest, e.digest) && found === undefined) found = e.principal;
    }
    return found;
  }

  /** The principal of an HTTP `Authorization: Bearer <token>` header. */
  authenticateHeader(header: string | undefined): Principal | undefined {
    if (this.open) return this.authenticate(undefined);
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    return m ? this.authenticate(m[1]) : undefined;
  }
}

function matches(patterns: readonly string[], bucket: string): boolean {
  return patterns.some((p) => (p.endsWith("*") ? bucket.startsWith(p.slice(0, -1)) : p === bucket));
}

export function mayRead(p: Principal, bucket: string): boolean {
  return matches(p.read, bucket);
}

export function mayWrite(p: Principal, bucket: string): boolean {
  return matches(p.write, bucket);
}

function forbidden(p: Principal, what: string): KvError {
  return new KvError("FORBIDDEN", `${p.name} may not ${what}`);
}

/**
 * Undefined when `p` may make `req`, else the FORBIDDEN error to answer. Every request
 * type is named: a new one does not compile until it is given a rule here.
 */
export function authorize(p: Principal, req: ClientRequest): KvError | undefined {
  switch (req.type) {
    case "hello":
    case "ping":
    case "watch_credit":
    case "watch_stop":
    // Filtered to what `p` may read (see `visibleBuckets`), and redacted for non-admins.
    case "bucket_list":
    case "cluster_status":
      return undefined;
    case "bucket_info":
      // Binding a bucket (the SDK's keyValue()) comes before reading or writing it.
      return mayRead(p, req.bucket) || mayWrite(p, req.bucket)
        ? undefined
        : forbidden(p, `use bucket ${req.bucket}`);
    case "get":
    case "keys":
    case "history":
    case "watch":
      return mayRead(p, req.bucket) ? undefined : forbidden(p, `read bucket ${req.bucket}`);
    case "write":
      return mayWrite(p, req.bucket) ? undefined : forbidden(p, `write to bucket ${req.bucket}`);
    case "bucket_create":
      return p.admin ? undefined : forbidden(p, "create buckets (needs admin)");
    case "bucket_delete":
      return p.admin ? undefined : forbidden(p, "delete buckets (needs admin)");
    case "purge_deletes":
      return p.admin ? undefined : forbidden(p, "purge delete markers (needs admin)");
    case "cluster_transfer":
    case "cluster_add":
    case "cluster_remove":
      return p.admin ? undefined : forbidden(p, "change the cluster (needs admin)");
    case "snapshot_open":
    case "snapshot_read":
    case "snapshot_close":
      // An image holds every bucket: only an admin may take one.
      return p.admin ? undefined : forbidden(p, "take a backup of every bucket (needs admin)");
  }
}

/**
 * What `cluster_status` tells `p`: all of it for an admin; for anyone else no cluster
 * id and no peer addresses (the cluster id names the cluster to its peers, and the
 * addresses are where to attack), only ids, roles and indexes.
 */
export function redactStatus(p: Principal, status: NodeStatus): NodeStatus {
  if (p.admin) return status;
  return {
    ...status,
    clusterId: "",
    peers: status.peers.map((peer) => ({ ...peer, address: "" })),
    buckets: status.buckets.filter((b) => mayRead(p, b)),
  };
}

/** The request id the node dedupes on: scoped to the principal when several exist. */
export function scopedRequestId(p: Principal, requestId: string): string {
  return p.scopeRequestIds ? `${p.name}/${requestId}` : requestId;
}

/**
 * Parses a tokens file: JSON `{"tokens": [{"name", "sha256", "admin"?, "read"?,
 * "write"?}, ...]}`. Every field is checked; the first problem is an INVALID_CONFIG
 * naming the entry.
 */
export function parseTokensFile(text: string, path = "tokens file"): TokenEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new KvError("INVALID_CONFIG", `${path}: not JSON: ${(err as Error).message}`);
  }
  const tokens = (doc as { tokens?: unknown } | null)?.tokens;
  if (typeof doc !== "object" || doc === null || !Array.isArray(tokens)) {
    throw new KvError("INVALID_CONFIG", `${path}: expected {"tokens": [...]}`);
  }
  const names = new Set<string>();
  const digests = new Set<string>();
  return tokens.map((raw, i) => {
    const at = `${path}: tokens[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new KvError("INVALID_CONFIG", `${at}: expected an object`);
    }
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!["name", "sha256", "admin", "read", "write"].includes(k)) {
        throw new KvError("INVALID_CONFIG", `${at}: unknown field ${JSON.stringify(k)}`);
      }
    }
    if (typeof e.name !== "string" || !NAME.test(e.name)) {
      throw new KvError(
        "INVALID_CONFIG",
        `${at}: "name" must be 1..64 of a-z A-Z 0-9 _ . @ - (got ${JSON.stringify(e.name)})`,
      );
    }
    if (names.has(e.name)) throw new KvError("INVALID_CONFIG", `${at}: name ${e.name} twice`);
    names.add(e.name);
    if (typeof e.sha256 !== "string" || !HEX_SHA256.test(e.sha256)) {
      throw new KvError(
        "INVALID_CONFIG",
        `${at} (${e.name}): "sha256" must be 64 lowercase hex digits (streamkv token create prints one)`,
      );
    }
    if (digests.has(e.sha256)) {
      throw new KvError("INVALID_CONFIG", `${at} (${e.name}): the same token twice`);
    }
    digests.add(e.sha256);
    if (e.admin !== undefined && typeof e.admin !== "boolean") {
      throw new KvError("INVALID_CONFIG", `${at} (${e.name}): "admin" must be true or false`);
    }
    const patterns = (field: "read" | "write"): string[] | undefined => {
      const v = e[field];
      if (v === undefined) return undefined;
      if (!Array.isArray(v) || !v.every((p) => typeof p === "string" && PATTERN.test(p))) {
        throw new KvError(
          "INVALID_CONFIG",
          `${at} (${e.name}): "${field}" must be a list of bucket names or prefixes ending in * (got ${JSON.stringify(v)})`,
        );
      }
      return v as string[];
    };
    const entry: TokenEntry = { name: e.name, sha256: e.sha256 };
    if (e.admin === true) entry.admin = true;
    const read = patterns("read");
    const write = patterns("write");
    if (read) entry.read = read;
    if (write) entry.write = write;
    return entry;
  });
}
