/**
 * What a snapshot of the KV state needs from kvapi. The whole KV state lives in
 * the stream log (data, bucket configs, applied index, request window), so a
 * snapshot is the log's export (log/snapshot.ts); kvapi only says which meta
 * record names the applied index the image stands for, and how to read it.
 * After an import, `KvStateMachine.restored()` re-reads the rest from the log.
 */
import { KvError } from "../proto/index.js";
import { decodeAppliedState, decodeBucketConfig, decodeDedupeRecord } from "./commands.js";
import { RING_KEY_PREFIX } from "./dedupe.js";
import { APPLIED_KEY, bucketMetaKey } from "./state_machine.js";

/** The meta record holding the applied index (written in every apply batch). */
export const APPLIED_META_KEY = APPLIED_KEY;

/** The applied index stored in the `APPLIED_META_KEY` record (0 when absent). */
export function appliedIndexOf(record: Uint8Array | null): number {
  if (record === null) return 0;
  let index: number;
  try {
    index = decodeAppliedState(record).index;
  } catch (err) {
    throw new KvError("CORRUPT_RECORD", "the applied-index record cannot be decoded", {}, err);
  }
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new KvError("CORRUPT_RECORD", `the applied index ${index} is not a safe integer`);
  }
  return index;
}

/**
 * Checks a meta record of a snapshot being imported (log/snapshot.ts `checkMeta`): the
 * records kvapi reads back after the install (applied state, bucket configs, the
 * request window) must decode, or the import is refused before anything is replaced.
 * Throws CORRUPT_RECORD; other keys are not kvapi's and pass.
 */
export function checkSnapshotMeta(key: string, value: Uint8Array): void {
  if (key === APPLIED_KEY) decodeAppliedState(value);
  else if (key.startsWith(RING_KEY_PREFIX)) decodeDedupeRecord(value);
  else if (key.startsWith(bucketMetaKey(""))) {
    const config = decodeBucketConfig(value);
    if (bucketMetaKey(config.bucket) !== key) {
      throw new KvError("CORRUPT_RECORD", `${key} holds the config of bucket ${config.bucket}`);
    }
  }
}
