/**
 * The simulator's state machine: an append-only list of the unique values
 * clients proposed. Applying is durable at once (the real one writes entries
 * and its applied index in one synced batch), so it survives crashes; a
 * snapshot is the list itself.
 */

import { assert } from "../assert.js";
import type { RaftStateMachine } from "../driver.js";
import { type Entry, EntryType, type SnapshotMeta } from "../storage.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SimStateMachine implements RaftStateMachine<number> {
  values: string[] = [];
  readonly valueSet = new Set<string>();
  applied = 0;
  /** Snapshots installed from a leader. */
  restores = 0;
  restored: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };
  /** Called for every entry applied (the checker compares sequences across nodes). */
  onApply: (entry: Entry) => void = () => {};

  appliedIndex(): number {
    return this.applied;
  }

  restoredMeta(): SnapshotMeta {
    return this.restored;
  }

  apply(entries: Entry[]): number[] {
    const results: number[] = [];
    for (const e of entries) {
      assert(e.index === this.applied + 1, `apply ${e.index} after ${this.applied}`);
      this.applied = e.index;
      if (e.type === EntryType.Normal) {
        const v = decoder.decode(e.data);
        this.values.push(v);
        this.valueSet.add(v);
      }
      this.onApply(e);
      results.push(this.values.length);
    }
    return results;
  }

  snapshot(): { index: number; data: Uint8Array } {
    return { index: this.applied, data: encoder.encode(this.values.join("\n")) };
  }

  restore(meta: SnapshotMeta, data: Uint8Array): void {
    const text = decoder.decode(data);
    this.values = text === "" ? [] : text.split("\n");
    this.valueSet.clear();
    for (const v of this.values) this.valueSet.add(v);
    this.applied = meta.index;
    this.restored = meta;
    this.restores++;
  }
}
