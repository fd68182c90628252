/**
 * How a watch that resumes from revision R starts, decided from what the log removed
 * (its watch horizon) so that the consumer's view stays exact and every skip is said:
 *
 * - replay: nothing at or above R was ever removed, so every entry from R on comes,
 *   as if the watch had never stopped;
 * - catch-up: some entries from R on are gone (trimmed by history, purged, expired),
 *   but every key that changed since R still has an entry: its latest comes, after a
 *   notice naming the revisions it stands for. A consumer that applied everything
 *   before R and then the catch-up holds exactly the state at the boundary B;
 * - reset: a key that changed after R has since vanished entirely (its marker removed
 *   by purgeDeletes or expiry), so no entry can tell the consumer it is gone; every
 *   matching key's latest entry comes and the consumer replaces its state.
 *
 * Without `catchUp` the strict rule stays: REVISION_COMPACTED when R is below the oldest
 * retained revision, else a replay of what is retained.
 */
import type { WatchHorizon } from "../../log/index.js";
import { KvError } from "../../proto/index.js";

export type ResumePlan = "replay" | "catch-up" | "reset";

export interface ResumeInput {
  bucket: string;
  /** The first revision the consumer has not seen. */
  resume: number;
  /** The watch boundary B: the bucket's written revision when the watch starts. */
  boundary: number;
  horizon: WatchHorizon;
  /** The stream's oldest stored revision (for the strict rule). */
  firstSeq: number;
  catchUp: boolean;
  allowReset: boolean;
}

const STRENGTH: Record<ResumePlan, number> = { replay: 0, "catch-up": 1, reset: 2 };

/** The plan for a resumed watch, or the REVISION_COMPACTED error it must fail with. */
export function planResume(input: ResumeInput): ResumePlan {
  const { bucket, resume, boundary, horizon, firstSeq } = input;
  // Everything the consumer lacks is above B: the live stream brings it all, from memory.
  if (resume > boundary) return "replay";
  if (!input.catchUp) {
    if (resume < firstSeq) {
      throw new KvError(
        "REVISION_COMPACTED",
        `revision ${resume} of bucket ${JSON.stringify(bucket)} is no longer retained; the oldest is ${firstSeq}`,
        { firstRevision: firstSeq },
      );
    }
    return "replay";
  }
  if (horizon.removedHighSeq < resume) return "replay";
  if (horizon.vanishedHighSeq < resume) return "catch-up";
  if (input.allowReset) return "reset";
  throw new KvError(
    "REVISION_COMPACTED",
    `a key of bucket ${JSON.stringify(bucket)} changed after revision ${resume - 1} and was then removed entirely (revision ${horizon.vanishedHighSeq}), so a catch-up cannot say it is gone; watch again, or allow a reset`,
    { firstRevision: firstSeq },
  );
}

/**
 * Whether `later` (the plan the horizon calls for now) needs more than `taken`: removals
 * during the initial scan may have taken entries the scan had not reached yet.
 */
export function planOutgrown(taken: ResumePlan, later: ResumePlan): boolean {
  return STRENGTH[later] > STRENGTH[taken];
}
