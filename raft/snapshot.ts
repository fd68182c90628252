/**
 * The snapshot seam between the driver and the state machine. A snapshot is
 * streamed, never held whole: the leader reads an image of its state machine in
 * chunks as a follower acknowledges them (`SnapshotSource`), and the follower
 * writes each chunk as it arrives and installs the whole at the end
 * (`SnapshotSink`). So a large state costs one chunk of memory on either side.
 *
 * The core knows only byte offsets: it asks for the chunk at the offset the
 * follower acknowledged and the driver fills the MsgSnap with `source.read()`.
 * `bytesSnapshotStore` adapts a state machine that is small enough to be one
 * `Uint8Array` (the simulator's) to the same seam.
 */
import { assert } from "./assert.js";
import type { SnapshotMeta } from "./storage.js";

/** One frozen image of the state machine at `index`, read in chunks (leader side). */
export interface SnapshotSource {
  /** The applied index the image stands for (<= commit index, >= the log's compaction point). */
  readonly index: number;
  /**
   * The chunk that starts at byte `offset`, of about `maxBytes` (a chunk may be
   * larger to hold one big record); `done` marks the last one. The driver asks
   * for offset 0, the end of the last chunk read, or its start again (a resend);
   * the same offset always gives the same bytes. Other offsets may throw.
   */
  read(offset: number, maxBytes: number): Promise<{ data: Uint8Array; done: boolean }>;
  /** Releases the image (an open LevelDB iterator pins old data). Idempotent. */
  close(): void;
}

/** Receives one snapshot's chunks in order from offset 0 (follower side). */
export interface SnapshotSink {
  /** Stores a chunk; its bytes are verified here (a bad chunk throws). */
  write(offset: number, data: Uint8Array, done: boolean): Promise<void>;
  /**
   * Replaces the state machine by the received image, durably and atomically
   * (a crash leaves either the old state or the new one), so that
   * `appliedIndex()` = `restoredMeta().index` = `meta.index` afterwards.
   */
  install(meta: SnapshotMeta): Promise<void>;
  /** Drops what was received (a newer transfer started, or none is needed). */
  abort(): Promise<void>;
}

export interface SnapshotStore {
  /** Freezes an image of the current applied state (it may resolve after a write finished). */
  open(): Promise<SnapshotSource>;
  /** Starts receiving the snapshot `meta` describes. */
  receive(meta: SnapshotMeta): Promise<SnapshotSink>;
}

/** A state machine whose whole image fits in one buffer (the simulator's, tests'). */
export interface BytesSnapshotMachine {
  /** The state at the applied index as bytes. */
  snapshot(): { index: number; data: Uint8Array };
  /** Replaces the state by a snapshot from the leader, durably. */
  restore(meta: SnapshotMeta, data: Uint8Array): void | Promise<void>;
}

/** Slices a byte image into chunks, and gathers chunks back into one buffer. */
export function bytesSnapshotStore(machine: BytesSnapshotMachine): SnapshotStore {
  return {
    open: async () => {
      const { index, data } = machine.snapshot();
      let closed = false;
      return {
        index,
        read: async (offset, maxBytes) => {
          assert(!closed, "read from a closed snapshot source");
          assert(
            offset >= 0 && offset <= data.byteLength,
            `snapshot offset ${offset} out of range`,
          );
          const end = Math.min(offset + Math.max(1, maxBytes), data.byteLength);
          return { data: data.subarray(offset, end), done: end === data.byteLength };
        },
        close: () => {
          closed = true;
        },
      };
    },
    receive: async (meta) => {
      const chunks: Uint8Array[] = [];
      let bytes = 0;
      let done = false;
      return {
        write: async (offset, data, last) => {
          assert(offset === bytes && !done, `snapshot chunk at ${offset}, expected ${bytes}`);
          chunks.push(data);
          bytes += data.byteLength;
          done = last;
        },
        install: async (installed) => {
          assert(done && installed.index === meta.index, "install of an incomplete snapshot");
          const whole = new Uint8Array(bytes);
          let at = 0;
          for (const c of chunks) {
            whole.set(c, at);
            at += c.byteLength;
          }
          chunks.length = 0;
          await machine.restore(installed, whole);
        },
        abort: async () => {
          chunks.length = 0;
        },
      };
    },
  };
}
