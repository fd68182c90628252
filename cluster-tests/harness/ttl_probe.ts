/**
 * A TTL bucket beside a chaos run: one writer puts a new key every `paceMs`, one watcher
 * (started first) records every entry with its created time, so the expiry PURGE marker
 * of a key can be set against the PUT it removed (expiry deletes the PUT from the log).
 *
 * What SEMANTICS.md promises, and `checkTtlProbe` checks: each entry expires `ttl` after
 * it was written, by the replicated clock (the leader stamps its time on every command,
 * kvapi applies max(clock, stamp): node/leader_proposer.ts, kvapi/state_machine.ts), so
 * an expiry marker is never stamped less than `ttl` after the PUT's created time; and
 * created times never go back in revision order. What it does not promise, and so is
 * only counted: expiry in real time. A leader whose clock jumps ahead expires keys early
 * by the real clock, and after the jump is healed the replicated clock waits for real
 * time to catch up (it never goes back), so keys then outlive their TTL.
 */
import type { ConnectOptions, Entry, KvConnection, KvWatch } from "../../client/index.js";

export interface TtlProbeFacts {
  ttlMs: number;
  /** Puts acked: key -> host time of the ack. */
  acked: Map<string, number>;
  putsFailed: number;
  /** What the watcher delivered, in order, with the host time it arrived. */
  seen: Array<{ key: string; revision: number; operation: string; createdMs: number; at: number }>;
  watchError: string | undefined;
}

export interface TtlProbe {
  /** Stops writing and watching; the facts for `checkTtlProbe`. */
  stop(): Promise<TtlProbeFacts>;
}

export async function startTtlProbe(
  connect: (o: ConnectOptions) => Promise<KvConnection>,
  urls: string[],
  bucket: string,
  ttlMs: number,
  opts: { paceMs?: number; maxPuts?: number } = {},
): Promise<TtlProbe> {
  const facts: TtlProbeFacts = {
    ttlMs,
    acked: new Map(),
    putsFailed: 0,
    seen: [],
    watchError: undefined,
  };
  const nc = await connect({ servers: urls, timeoutMs: 3000 });
  const wc = await connect({ servers: [...urls].reverse(), timeoutMs: 3000 });
  const kv = await nc.createKeyValue({ bucket, ttl: ttlMs, history: 4 });
  const watch: KvWatch<Entry | null> = await (await wc.keyValue(bucket)).watchAll();
  const watching = (async () => {
    try {
      for await (const e of watch) {
        if (e === null) continue;
        facts.seen.push({
          key: e.key,
          revision: e.revision,
          operation: e.operation,
          createdMs: e.created.getTime(),
          at: Date.now(),
        });
      }
    } catch (err) {
      facts.watchError = String(err);
    }
  })();
  const stop = { requested: false };
  const writing = (async () => {
    const maxPuts = opts.maxPuts ?? 2000;
    for (let n = 0; n < maxPuts && !stop.requested; n++) {
      const key = `t${n}`;
      try {
        await kv.putString(key, String(n));
        facts.acked.set(key, Date.now());
      } catch {
        facts.putsFailed++;
      }
      // Pacing, not a wait for a condition: a key a while is what the probe needs.
      await new Promise((r) => setTimeout(r, opts.paceMs ?? 200));
    }
  })();
  return {
    async stop() {
      stop.requested = true;
      await writing;
      // Until the watcher has every acked put's revision or its markers (bounded).
      const deadline = Date.now() + 10_000;
      for (let n = 0; n < 200 && Date.now() < deadline; n++) {
        const keys = new Set(facts.seen.map((s) => s.key));
        if ([...facts.acked.keys()].every((k) => keys.has(k))) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      watch.stop();
      await watching;
      await Promise.all([nc.close(), wc.close()]);
      return facts;
    },
  };
}

export interface TtlVerdict {
  anomalies: string[];
  /** Keys whose expiry marker the watcher saw. */
  expired: number;
  /** Of those, expired sooner than `ttl` after their ack by the host's clock. */
  expiredEarlyRealTime: number;
  /**
   * Markers whose PUT the watcher never saw, and acked keys it saw nothing of: a watcher
   * that failed over (a follower whose clock jumped ahead ends its watches, leader_contact.ts)
   * resumes after entries that expired meanwhile are gone. Counted, not anomalies.
   */
  unmatched: number;
  unseen: number;
}

export function checkTtlProbe(f: TtlProbeFacts): TtlVerdict {
  const anomalies: string[] = [];
  if (f.watchError !== undefined) anomalies.push(`ttl watcher ended: ${f.watchError}`);
  const put = new Map<string, TtlProbeFacts["seen"][number]>();
  let expired = 0;
  let expiredEarlyRealTime = 0;
  let unmatched = 0;
  let last: TtlProbeFacts["seen"][number] | undefined;
  for (const s of f.seen) {
    if (last !== undefined && s.revision <= last.revision) {
      anomalies.push(`ttl watcher: revision ${s.revision} after ${last.revision}`);
    }
    if (last !== undefined && s.createdMs < last.createdMs) {
      anomalies.push(
        `ttl bucket: created time went back ${last.createdMs - s.createdMs} ms at revision ${s.revision}`,
      );
    }
    last = s;
    if (s.operation === "PUT") {
      put.set(s.key, s);
      continue;
    }
    // The probe only puts: every marker is expiry's.
    const p = put.get(s.key);
    if (p === undefined) {
      unmatched++;
      continue;
    }
    expired++;
    if (s.createdMs - p.createdMs < f.ttlMs) {
      anomalies.push(
        `ttl bucket: ${s.key} (revision ${p.revision}) expired ${s.createdMs - p.createdMs} ms after it was written by the replicated clock, ttl ${f.ttlMs} ms`,
      );
    }
    const ackedAt = f.acked.get(s.key);
    if (ackedAt !== undefined && s.at - ackedAt < f.ttlMs) expiredEarlyRealTime++;
  }
  const keys = new Set(f.seen.map((s) => s.key));
  const unseen = [...f.acked.keys()].filter((k) => !keys.has(k)).length;
  return { anomalies, expired, expiredEarlyRealTime, unmatched, unseen };
}
