/**
 * node/auth.ts: the tokens file is checked field by field, tokens are matched by
 * digest, and every request type has a rule (the permission matrix at the unit level;
 * node/auth_process.test.ts checks the same through a real server and the SDK).
 */
import { describe, expect, it } from "vitest";
import type { ClientRequest, NodeStatus } from "../proto/index.js";
import {
  Authenticator,
  authorize,
  newToken,
  type Principal,
  parseTokensFile,
  redactStatus,
  scopedRequestId,
  sha256Hex,
} from "./auth.js";

const rootToken = newToken();
const readerToken = newToken();
const writerToken = newToken();
const adminToken = newToken();

const auth = Authenticator.fromEntries([
  { name: "root", sha256: sha256Hex(rootToken), admin: true, read: ["*"], write: ["*"] },
  { name: "reader", sha256: sha256Hex(readerToken), read: ["app*"] },
  { name: "writer", sha256: sha256Hex(writerToken), write: ["app"] },
  { name: "ops", sha256: sha256Hex(adminToken), admin: true },
]);

function principal(token: string): Principal {
  const p = auth.authenticate(token);
  if (!p) throw new Error("token not known");
  return p;
}

const onBucket = (bucket: string): ClientRequest[] => [
  { type: "bucket_info", bucket, stale: false },
  { type: "get", bucket, key: "k", stale: false },
  { type: "keys", bucket, filter: ">", after: "", limit: 0, stale: false },
  { type: "history", bucket, key: "k", afterRevision: 0, stale: false },
  {
    type: "watch",
    bucket,
    filter: ">",
    includeHistory: false,
    ignoreDeletes: false,
    metaOnly: false,
    updatesOnly: false,
    credit: 1,
    catchUp: true,
    allowReset: false,
    progressIntervalMs: 0,
    batchEntries: false,
  },
  ...(["put", "create", "update", "delete", "purge"] as const).map(
    (op): ClientRequest => ({
      type: "write",
      bucket,
      key: "k",
      op,
      value: new Uint8Array(),
      requestId: "r",
    }),
  ),
  { type: "bucket_delete", bucket, requestId: "r" },
  { type: "purge_deletes", bucket, requestId: "r" },
];

const global: ClientRequest[] = [
  { type: "ping" },
  { type: "bucket_list", stale: false },
  { type: "cluster_status" },
  {
    type: "bucket_create",
    config: { bucket: "new" } as Extract<ClientRequest, { type: "bucket_create" }>["config"],
    requestId: "r",
  },
  { type: "cluster_transfer", to: "n2" },
  { type: "cluster_add", id: "n4", address: "127.0.0.1:1" },
  { type: "cluster_remove", id: "n2" },
];

/** "allowed" or the error code, per request, for a compact matrix. */
function verdicts(p: Principal, requests: ClientRequest[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of requests) {
    const name = r.type === "write" ? `write:${r.op}` : r.type;
    out[name] = authorize(p, r)?.code ?? "allowed";
  }
  return out;
}

describe("the permission matrix (principal x operation x bucket)", () => {
  const reads = ["bucket_info", "get", "keys", "history", "watch"];
  const writes = ["put", "create", "update", "delete", "purge"].map((op) => `write:${op}`);
  const bucketAdmin = ["bucket_delete", "purge_deletes"];
  const expectOn = (
    p: Principal,
    bucket: string,
    allowed: { read: boolean; write: boolean; admin: boolean; info?: boolean },
  ) => {
    const v = verdicts(p, onBucket(bucket));
    const want: Record<string, string> = {};
    for (const r of reads) want[r] = allowed.read ? "allowed" : "FORBIDDEN";
    want.bucket_info = (allowed.info ?? allowed.read) ? "allowed" : "FORBIDDEN";
    for (const w of writes) want[w] = allowed.write ? "allowed" : "FORBIDDEN";
    for (const a of bucketAdmin) want[a] = allowed.admin ? "allowed" : "FORBIDDEN";
    expect(v, `${p.name} on ${bucket}`).toEqual(want);
  };

  it("root may do everything on every bucket", () => {
    for (const b of ["app", "apple", "other"]) {
      expectOn(principal(rootToken), b, { read: true, write: true, admin: true });
    }
    expect(Object.values(verdicts(principal(rootToken), global))).toEqual(
      global.map(() => "allowed"),
    );
  });

  it("a reader of app* reads app and apple, nothing else, and changes nothing", () => {
    const p = principal(readerToken);
    expectOn(p, "app", { read: true, write: false, admin: false });
    expectOn(p, "apple", { read: true, write: false, admin: false });
    expectOn(p, "other", { read: false, write: false, admin: false });
    expect(verdicts(p, global)).toEqual({
      ping: "allowed",
      bucket_list: "allowed",
      cluster_status: "allowed",
      bucket_create: "FORBIDDEN",
      cluster_transfer: "FORBIDDEN",
      cluster_add: "FORBIDDEN",
      cluster_remove: "FORBIDDEN",
    });
  });

  it("a writer of app writes app only, may bind it, but may not read it", () => {
    const p = principal(writerToken);
    expectOn(p, "app", { read: false, write: true, admin: false, info: true });
    expectOn(p, "apple", { read: false, write: false, admin: false });
  });

  it("admin alone manages buckets and the cluster but reads and writes no data", () => {
    const p = principal(adminToken);
    expectOn(p, "app", { read: false, write: false, admin: true });
    expect(Object.values(verdicts(p, global))).toEqual(global.map(() => "allowed"));
  });

  it("a refusal names the principal and what it may not do, never the token", () => {
    const err = authorize(principal(readerToken), {
      type: "write",
      bucket: "app",
      key: "k",
      op: "put",
      value: new Uint8Array(),
      requestId: "r",
    })!;
    expect(err.code).toBe("FORBIDDEN");
    expect(err.message).toBe("reader may not write to bucket app");
    expect(err.message).not.toContain(readerToken);
  });
});

describe("authentication", () => {
  it("knows a token only by its digest; a wrong, empty or missing token is no one", () => {
    expect(principal(readerToken).name).toBe("reader");
    expect(auth.authenticate(`${readerToken}x`)).toBeUndefined();
    expect(auth.authenticate("")).toBeUndefined();
    expect(auth.authenticate(undefined)).toBeUndefined();
    expect(auth.authenticate(sha256Hex(readerToken))).toBeUndefined();
  });

  it("open access (no token configured) is the anonymous root; a shared token is the token root", () => {
    const open = Authenticator.openAccess().authenticate(undefined)!;
    expect(open).toMatchObject({ name: "anonymous", admin: true, scopeRequestIds: false });
    const shared = Authenticator.sharedToken("s3cret");
    expect(shared.authenticate("s3cret")).toMatchObject({ name: "token", admin: true });
    expect(shared.authenticate("s3cre")).toBeUndefined();
    expect(shared.authenticate(undefined)).toBeUndefined();
  });

  it("reads an HTTP bearer header", () => {
    expect(auth.authenticateHeader(`Bearer ${adminToken}`)?.name).toBe("ops");
    expect(auth.authenticateHeader(`bearer ${adminToken}`)?.name).toBe("ops");
    expect(auth.authenticateHeader(adminToken)).toBeUndefined();
    expect(auth.authenticateHeader(undefined)).toBeUndefined();
  });

  it("new tokens are long, distinct and never look like a flag", () => {
    const tokens = new Set(Array.from({ length: 200 }, () => newToken()));
    expect(tokens.size).toBe(200);
    for (const t of tokens) expect(t).toMatch(/^skv_[A-Za-z0-9_-]{43}$/);
  });

  it("a reload swaps the tokens in place", () => {
    const a = Authenticator.fromEntries([{ name: "a", sha256: sha256Hex(rootToken), read: ["*"] }]);
    a.replaceWith(
      Authenticator.fromEntries([{ name: "b", sha256: sha256Hex(readerToken), read: ["*"] }]),
    );
    expect(a.authenticate(rootToken)).toBeUndefined();
    expect(a.authenticate(readerToken)?.name).toBe("b");
  });
});

describe("request ids and status are scoped to the principal", () => {
  it("prefixes request ids with the principal when a tokens file names several", () => {
    expect(scopedRequestId(principal(readerToken), "r1")).toBe("reader/r1");
    expect(scopedRequestId(principal(writerToken), "r1")).toBe("writer/r1");
    const open = Authenticator.openAccess().authenticate(undefined)!;
    expect(scopedRequestId(open, "r1")).toBe("r1");
  });

  it("shows a non-admin no cluster id, no peer address and only its buckets", () => {
    const status = {
      id: "n1",
      role: "leader",
      term: 3,
      leader: "n1",
      commitIndex: 9,
      appliedIndex: 9,
      peers: [{ id: "n2", address: "10.0.0.2:7421", matchIndex: 9, voter: true }],
      buckets: ["app", "secret"],
      replicated: true,
      clusterId: "c-1234",
    } as NodeStatus;
    expect(redactStatus(principal(readerToken), status)).toMatchObject({
      clusterId: "",
      peers: [{ id: "n2", address: "" }],
      buckets: ["app"],
    });
    expect(redactStatus(principal(adminToken), status)).toBe(status);
  });
});

describe("parseTokensFile", () => {
  const digest = sha256Hex("x".repeat(20));
  const bad: [string, RegExp][] = [
    ["not json", /not JSON/],
    ["[]", /expected \{"tokens"/],
    ['{"tokens": [1]}', /tokens\[0\]: expected an object/],
    ['{"tokens": [{"name": "a b", "sha256": "x"}]}', /"name" must be/],
    ['{"tokens": [{"name": "a", "sha256": "abc"}]}', /"sha256" must be 64 lowercase hex/],
    [`{"tokens": [{"name": "a", "sha256": "${digest}", "admin": "yes"}]}`, /"admin" must be/],
    [`{"tokens": [{"name": "a", "sha256": "${digest}", "read": "*"}]}`, /"read" must be a list/],
    [`{"tokens": [{"name": "a", "sha256": "${digest}", "write": ["a.b"]}]}`, /"write" must be/],
    [`{"tokens": [{"name": "a", "sha256": "${digest}", "rw": []}]}`, /unknown field "rw"/],
    [
      `{"tokens": [{"name": "a", "sha256": "${digest}"}, {"name": "a", "sha256": "${sha256Hex("y")}"}]}`,
      /name a twice/,
    ],
    [
      `{"tokens": [{"name": "a", "sha256": "${digest}"}, {"name": "b", "sha256": "${digest}"}]}`,
      /the same token twice/,
    ],
  ];
  for (const [text, message] of bad) {
    it(`refuses ${text.slice(0, 60)}`, () => {
      let err: unknown;
      try {
        parseTokensFile(text, "t.json");
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: "INVALID_CONFIG" });
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/^t\.json/);
    });
  }

  it("accepts a full entry", () => {
    expect(
      parseTokensFile(
        `{"tokens": [{"name": "ci@build", "sha256": "${digest}", "admin": true, "read": ["*"], "write": ["a", "b-*"]}]}`,
      ),
    ).toEqual([
      { name: "ci@build", sha256: digest, admin: true, read: ["*"], write: ["a", "b-*"] },
    ]);
  });
});
