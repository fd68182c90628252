/**
 * The `bucket` label of the KV metrics, with bounded cardinality: the first `max`
 * bucket names seen in a successful request get their own label value, every other
 * name is `_other`. Only a request that succeeded admits a name (the bucket existed, or
 * an admin created it), so a client that sends made-up names cannot fill the slots;
 * a deleted bucket keeps its slot until the process restarts (series never disappear
 * under a dashboard mid-range). Keys are never a label.
 */
export const OTHER_BUCKETS = "_other";
/** Requests that name no bucket (bucket list, cluster calls, ping). */
export const NO_BUCKET = "";

export class BucketLabels {
  private readonly admitted = new Set<string>();

  constructor(readonly max = 100) {}

  /** The label value for `bucket`; admits it when `succeeded` and a slot is free. */
  labelOf(bucket: string, succeeded: boolean): string {
    if (bucket === NO_BUCKET || this.admitted.has(bucket)) return bucket;
    if (succeeded && this.admitted.size < this.max) {
      this.admitted.add(bucket);
      return bucket;
    }
    return OTHER_BUCKETS;
  }

  get size(): number {
    return this.admitted.size;
  }
}
