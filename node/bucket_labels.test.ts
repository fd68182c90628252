import { describe, expect, it } from "vitest";
import { BucketLabels, NO_BUCKET, OTHER_BUCKETS } from "./bucket_labels.js";

describe("BucketLabels", () => {
  it("gives the first max buckets of successful requests their own label, the rest _other", () => {
    const labels = new BucketLabels(3);
    for (const b of ["a", "b", "c", "d", "e"]) labels.labelOf(b, true);
    expect(["a", "b", "c", "d", "e"].map((b) => labels.labelOf(b, true))).toEqual([
      "a",
      "b",
      "c",
      OTHER_BUCKETS,
      OTHER_BUCKETS,
    ]);
    expect(labels.size).toBe(3);
  });

  it("never lets a failed request take a slot, so made-up names cannot fill them", () => {
    const labels = new BucketLabels(2);
    for (let i = 0; i < 10_000; i++) {
      expect(labels.labelOf(`nope-${i}`, false)).toBe(OTHER_BUCKETS);
    }
    expect(labels.size).toBe(0);
    expect(labels.labelOf("real", true)).toBe("real");
    // Once admitted, a bucket keeps its label in failures too (BUCKET_NOT_FOUND after a delete).
    expect(labels.labelOf("real", false)).toBe("real");
  });

  it("labels requests that name no bucket with the empty value, outside the cap", () => {
    const labels = new BucketLabels(0);
    expect(labels.labelOf(NO_BUCKET, true)).toBe(NO_BUCKET);
    expect(labels.labelOf("x", true)).toBe(OTHER_BUCKETS);
  });
});
