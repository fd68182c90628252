/**
 * Snapshot chunks, fuzzed, into a follower's `KvSnapshotStore` (the stream log's
 * import under kvapi, on memory-level): a leader's image in small chunks, one chunk
 * mutated per case, either as it is (its CRC32C then fails) or re-sealed with a valid
 * checksum over the changed bytes (a crafted or buggy leader).
 * - A chunk that fails its checks is refused with a typed error (CORRUPT_RECORD, or
 *   INVALID_ARGUMENT for the chunks after it), the import is dropped, and the
 *   follower's state is the one it had: same digest, its own key still readable.
 * - Whatever installs (only a re-sealed chunk can) is a state kvapi reads: no other
 *   exception anywhere.
 */
import fc from "fast-check";
import { MemoryLevel } from "memory-level";
import { beforeAll, describe, expect, it } from "vitest";
import {
  checkSnapshotMeta,
  encodeCommand,
  KvStateMachine,
  normalizeBucketConfig,
} from "../kvapi/index.js";
import { StreamLog } from "../log/index.js";
import { isKvError } from "../proto/index.js";
import { applyEdits, edit, fuzz } from "../test_support/index.js";
import { silentLogger } from "./log.js";
import { KvSnapshotStore } from "./snapshot_store.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const META = { index: 7, term: 2, conf: { voters: ["n1"], learners: [] } };

interface Node {
  log: StreamLog;
  kv: KvStateMachine;
  store: KvSnapshotStore;
}

async function node(bucket: string, keys: string[]): Promise<Node> {
  const db = new MemoryLevel<Uint8Array | string, Uint8Array>({
    storeEncoding: "view",
    keyEncoding: "view",
    valueEncoding: "view",
  });
  const log = await StreamLog.open(db);
  const kv = await KvStateMachine.open(log);
  let index = 0;
  const apply = (c: Parameters<typeof encodeCommand>[0]) => kv.apply(++index, encodeCommand(c));
  await apply({
    type: "createBucket",
    config: normalizeBucketConfig({ bucket, history: 3 }),
    timestampMs: 1,
  });
  for (const key of keys) {
    await apply({
      type: "put",
      bucket,
      key,
      value: bytes(`v-${key}`),
      timestampMs: 2,
      request: { id: key },
    });
  }
  await apply({ type: "delete", bucket, key: keys[0]!, timestampMs: 3 });
  const store = await KvSnapshotStore.open(log, kv, { log: silentLogger });
  return { log, kv, store };
}

/** The leader's image in chunks of at most `maxBytes`. */
async function chunksOf(n: Node, maxBytes: number): Promise<{ data: Uint8Array; done: boolean }[]> {
  const source = await n.store.open();
  const out: { data: Uint8Array; done: boolean }[] = [];
  let offset = 0;
  for (;;) {
    const c = await source.read(offset, maxBytes);
    out.push({ data: c.data.slice(), done: c.done });
    offset += c.data.byteLength;
    if (c.done) break;
  }
  source.close();
  return out;
}

function crc32c(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return ~c >>> 0;
}

/** `body` with a valid trailer: the chunk's CRC32C of all bytes before it (u32 LE). */
function resealed(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 4);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32c(body), true);
  return out;
}

let chunks: { data: Uint8Array; done: boolean }[] = [];
let follower: Node;
let before: string;

beforeAll(async () => {
  const leader = await node("b", ["k.1", "k.2", "k.3", "k.4", "k.5", "k.6"]);
  chunks = await chunksOf(leader, 600);
  expect(chunks.length).toBe(2);
  follower = await node("mine", ["a", "b"]);
  before = await follower.log.digest();
});

/** Feeds the chunks, the `at`th replaced by `changed`; installs if every write passed. */
async function feed(at: number, changed: Uint8Array): Promise<"refused" | "installed"> {
  const sink = await follower.store.receive(META);
  let offset = 0;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    const data = i === at ? changed : c.data;
    try {
      await sink.write(offset, data, c.done);
    } catch (err) {
      expect(
        isKvError(err, "CORRUPT_RECORD") || isKvError(err, "INVALID_ARGUMENT"),
        String(err),
      ).toBe(true);
      await sink.abort();
      return "refused";
    }
    offset += data.byteLength;
  }
  try {
    await sink.install(META);
  } catch (err) {
    expect(isKvError(err), String(err)).toBe(true);
    await sink.abort();
    return "refused";
  }
  return "installed";
}

let checks = 0;

/** Still the follower's own state (the full digest every 50th time: a change would stay). */
async function expectUnchanged(): Promise<void> {
  expect(follower.log.streamNames()).toEqual(["KV_mine"]);
  expect((await follower.kv.get("mine", "b"))?.key).toBe("b");
  if (++checks % 50 === 0) expect(await follower.log.digest()).toBe(before);
}

describe("snapshot chunks into a follower's store (fuzzed)", () => {
  it("a changed chunk is refused, typed, with the state kept; a re-sealed one may install what kvapi reads", async () => {
    await fuzz(
      fc.asyncProperty(
        fc.nat(),
        fc.array(edit, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (at, edits, reseal) => {
          const i = at % chunks.length;
          const data = chunks[i]!.data;
          const changed = reseal
            ? resealed(applyEdits(data.subarray(0, data.length - 4), edits))
            : applyEdits(data, edits);
          if (Buffer.compare(changed, data) === 0) return;
          const outcome = await feed(i, changed);
          if (!reseal) expect(outcome).toBe("refused");
          if (outcome === "refused") {
            await expectUnchanged();
            return;
          }
          // Installed: whatever it holds, kvapi reads it with typed errors at most.
          for (const b of follower.kv.listBuckets()) {
            await follower.kv
              .keys(b.bucket)
              .catch((err) => expect(isKvError(err), String(err)).toBe(true));
          }
          follower = await node("mine", ["a", "b"]);
          before = await follower.log.digest();
        },
      ),
    );
    expect(await follower.log.digest()).toBe(before);
  });

  it("a snapshot whose kvapi records do not decode is refused before anything is replaced (follows from the kvapi decoder finding)", async () => {
    // Valid checksums everywhere: the log took it, installed it, and then kvapi could not
    // read it back, so the follower was left on a state it could not open again.
    const garbage = new Uint8Array([10, 0, 98, 16, 5, 24, 232, 7, 32, 1, 40, 200, 1, 48, 1, 58, 0]);
    // (A leader refuses to export an applied-state record it cannot read itself.)
    expect(() => checkSnapshotMeta("kv/applied", garbage)).toThrow(/cannot be decoded/);
    for (const key of ["kv/bucket/b", "kv/ring/0"]) {
      const leader = await node("b", ["k.1"]);
      await leader.log.writeMeta({ [key]: garbage });
      const saved = chunks;
      chunks = await chunksOf(leader, 1 << 20);
      try {
        expect(await feed(-1, new Uint8Array(0))).toBe("refused");
      } finally {
        chunks = saved;
      }
      expect(await follower.log.digest()).toBe(before);
      await KvStateMachine.open(follower.log);
    }
  });
});
