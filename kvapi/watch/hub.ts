/**
 * Fans committed entries out to watchers. One subject tree per bucket finds
 * the watchers of a key without looking at the others, so a write costs the
 * same with ten or ten thousand unrelated watchers.
 */
import type { KvError } from "../../proto/index.js";
import { SubjectTree } from "./subject_tree.js";
import type { KvWatcher, WatchEvent } from "./watcher.js";

export class WatchHub {
  private readonly trees = new Map<string, SubjectTree<KvWatcher>>();
  private readonly byBucket = new Map<string, Set<KvWatcher>>();

  add(watcher: KvWatcher): void {
    let tree = this.trees.get(watcher.bucket);
    if (tree === undefined) {
      tree = new SubjectTree();
      this.trees.set(watcher.bucket, tree);
      this.byBucket.set(watcher.bucket, new Set());
    }
    tree.insert(watcher.filter, watcher);
    this.byBucket.get(watcher.bucket)!.add(watcher);
  }

  remove(watcher: KvWatcher): void {
    const tree = this.trees.get(watcher.bucket);
    if (tree === undefined) return;
    tree.remove(watcher.filter, watcher);
    const set = this.byBucket.get(watcher.bucket)!;
    set.delete(watcher);
    if (set.size === 0) {
      this.trees.delete(watcher.bucket);
      this.byBucket.delete(watcher.bucket);
    }
  }

  /** Delivers committed events of one bucket, in revision order. */
  publish(bucket: string, events: readonly WatchEvent[]): void {
    const tree = this.trees.get(bucket);
    if (tree === undefined) return;
    const matched: KvWatcher[] = [];
    for (const event of events) {
      // Collect first: a push may end a watcher, which edits the tree.
      tree.match(event.subject, (w) => matched.push(w));
      for (const w of matched) w.push(event);
      matched.length = 0;
    }
  }

  /** Ends every watcher of a bucket (it was deleted). */
  endBucket(bucket: string, error: KvError): void {
    const set = this.byBucket.get(bucket);
    if (set === undefined) return;
    for (const w of [...set]) w.fail(error);
  }

  endAll(error: KvError): void {
    for (const bucket of [...this.byBucket.keys()]) this.endBucket(bucket, error);
  }

  watcherCount(bucket?: string): number {
    if (bucket !== undefined) return this.byBucket.get(bucket)?.size ?? 0;
    let n = 0;
    for (const set of this.byBucket.values()) n += set.size;
    return n;
  }
}
