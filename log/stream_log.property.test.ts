/**
 * Property test: random sequences of operations run against the log and a tiny
 * in-memory model (a sorted array per stream, limits applied naively); every
 * read is compared after every operation. fast-check prints the seed and the
 * shrunk failing sequence.
 */
import { ClassicLevel } from "classic-level";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isKvError } from "../proto/index.js";
import { deleteIndexCheckpoint } from "./index_checkpoint.js";
import { StreamLog } from "./stream_log.js";
import { matchSubject } from "./subjects.js";
import { collect, tempDir } from "./test_helpers.js";
import type { Operation, StoredMessage, StreamConfig, StreamState } from "./types.js";

const HARD_MAX_BYTES = 12;
const STREAMS = ["s1", "s2"] as const;
const SUBJECTS = ["a", "a.b", "a.c", "b.x", "b.y.z"] as const;
const FILTERS = [">", "a", "a.*", "a.>", "b.>", "*.x", "*"] as const;

interface ModelStream {
  config: StreamConfig;
  lastSeq: number;
  msgs: StoredMessage[];
}

type Outcome<T> = { ok: T } | { code: string };

class Model {
  readonly streams = new Map<string, ModelStream>();

  private need(name: string): ModelStream {
    const s = this.streams.get(name);
    if (!s) throw new ModelError("STREAM_NOT_FOUND");
    return s;
  }

  create(config: StreamConfig): void {
    const existing = this.streams.get(config.name);
    if (existing) {
      if (JSON.stringify(existing.config) !== JSON.stringify(config)) {
        throw new ModelError("STREAM_EXISTS");
      }
      return;
    }
    this.streams.set(config.name, { config: { ...config }, lastSeq: 0, msgs: [] });
  }

  update(config: StreamConfig): void {
    const s = this.need(config.name);
    s.config = { ...config };
    if (config.maxMsgsPerSubject > 0) {
      for (const subject of SUBJECTS) {
        const mine = s.msgs.filter((m) => m.subject === subject);
        const drop = new Set(mine.slice(0, Math.max(0, mine.length - config.maxMsgsPerSubject)));
        s.msgs = s.msgs.filter((m) => !drop.has(m));
      }
    }
    this.dropOld(s);
  }

  private over(s: ModelStream, msgs: StoredMessage[]): boolean {
    const bytes = msgs.reduce((sum, m) => sum + m.payload.length, 0);
    const c = s.config;
    return (c.maxMsgs > 0 && msgs.length > c.maxMsgs) || (c.maxBytes > 0 && bytes > c.maxBytes);
  }

  private dropOld(s: ModelStream): void {
    while (s.msgs.length > 0 && this.over(s, s.msgs)) s.msgs.shift();
  }

  delete(name: string): void {
    this.need(name);
    this.streams.delete(name);
  }

  append(name: string, subject: string, payload: Uint8Array, operation: Operation, ts: number) {
    const s = this.need(name);
    const c = s.config;
    const limit = c.maxMsgSize === -1 ? HARD_MAX_BYTES : Math.min(c.maxMsgSize, HARD_MAX_BYTES);
    if (payload.length > limit) throw new ModelError("MESSAGE_TOO_LARGE");
    const mine = s.msgs.filter((m) => m.subject === subject);
    const trimmed =
      c.maxMsgsPerSubject > 0
        ? new Set(mine.slice(0, Math.max(0, mine.length + 1 - c.maxMsgsPerSubject)))
        : new Set<StoredMessage>();
    const message: StoredMessage = {
      stream: name,
      seq: s.lastSeq + 1,
      subject,
      payload,
      operation,
      timestampMs: ts,
    };
    const next = [...s.msgs.filter((m) => !trimmed.has(m)), message];
    if (this.over(s, next)) {
      const tooBig = c.maxBytes > 0 && payload.length > c.maxBytes;
      if (c.discard === "new" || tooBig) throw new ModelError("STREAM_FULL");
    }
    s.msgs = next;
    s.lastSeq++;
    this.dropOld(s);
    return s.lastSeq;
  }

  purge(name: string, subject: string | undefined, keep: number): number {
    const s = this.need(name);
    const before = s.msgs.length;
    const drop = new Set<StoredMessage>();
    for (const subj of SUBJECTS) {
      if (subject !== undefined && !matchSubject(subject, subj)) continue;
      const mine = s.msgs.filter((m) => m.subject === subj);
      for (const m of mine.slice(0, Math.max(0, mine.length - keep))) drop.add(m);
    }
    s.msgs = s.msgs.filter((m) => !drop.has(m));
    return before - s.msgs.length;
  }

  expire(name: string, nowMs: number): number[] {
    const s = this.need(name);
    if (s.config.maxAgeMs === 0) return [];
    const cutoff = nowMs - s.config.maxAgeMs;
    const gone = s.msgs.filter((m) => m.timestampMs <= cutoff).map((m) => m.seq);
    s.msgs = s.msgs.filter((m) => m.timestampMs > cutoff);
    return gone;
  }

  remove(name: string, seq: number): boolean {
    const s = this.need(name);
    const before = s.msgs.length;
    s.msgs = s.msgs.filter((m) => m.seq !== seq);
    return s.msgs.length !== before;
  }

  state(name: string): StreamState {
    const s = this.need(name);
    return {
      firstSeq: s.msgs[0]?.seq ?? s.lastSeq + 1,
      lastSeq: s.lastSeq,
      messages: s.msgs.length,
      bytes: s.msgs.reduce((sum, m) => sum + m.payload.length, 0),
      subjects: new Set(s.msgs.map((m) => m.subject)).size,
    };
  }
}

class ModelError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

function attempt<T>(fn: () => T): Outcome<T> {
  try {
    return { ok: fn() };
  } catch (err) {
    if (err instanceof ModelError || isKvError(err)) return { code: err.code };
    throw err;
  }
}

async function attemptAsync<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: await fn() };
  } catch (err) {
    if (isKvError(err)) return { code: err.code };
    throw err;
  }
}

const configArb = (name: string) =>
  fc.record({
    name: fc.constant(name),
    maxMsgsPerSubject: fc.constantFrom(-1, 1, 2, 3),
    maxAgeMs: fc.constantFrom(0, 40),
    maxBytes: fc.constantFrom(-1, 15, 30),
    maxMsgs: fc.constantFrom(-1, 3, 6),
    maxMsgSize: fc.constantFrom(-1, 6),
    discard: fc.constantFrom<"old" | "new">("old", "new"),
  });

const streamArb = fc.constantFrom(...STREAMS);
const appendArb = fc.record({
  stream: streamArb,
  subject: fc.constantFrom(...SUBJECTS),
  size: fc.nat({ max: 14 }),
  operation: fc.constantFrom<Operation>("PUT", "PUT", "DEL", "PURGE"),
  jitterMs: fc.integer({ min: -15, max: 0 }),
});

const commandArb = fc.oneof(
  {
    weight: 2,
    arbitrary: streamArb.chain((n) => configArb(n)).map((c) => ({ t: "create" as const, c })),
  },
  {
    weight: 1,
    arbitrary: streamArb.chain((n) => configArb(n)).map((c) => ({ t: "update" as const, c })),
  },
  { weight: 1, arbitrary: streamArb.map((s) => ({ t: "delete" as const, s })) },
  { weight: 8, arbitrary: appendArb.map((a) => ({ t: "append" as const, a })) },
  {
    weight: 2,
    arbitrary: fc
      .array(appendArb, { minLength: 2, maxLength: 4 })
      .map((list) => ({ t: "batch" as const, list })),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("purge" as const),
      s: streamArb,
      subject: fc.constantFrom(undefined, ...SUBJECTS, "a.*", "b.>", ">"),
      keep: fc.constantFrom(0, 0, 1, 2),
    }),
  },
  { weight: 2, arbitrary: streamArb.map((s) => ({ t: "expire" as const, s })) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("remove" as const),
      s: streamArb,
      seq: fc.nat({ max: 20 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 60 }).map((ms) => ({ t: "tick" as const, ms })),
  },
  // clean: close() writes the index checkpoint and open loads it; else the checkpoint
  // is dropped first, as after a crash, and open rebuilds by the full scan.
  { weight: 1, arbitrary: fc.boolean().map((clean) => ({ t: "reopen" as const, clean })) },
);

type Command = typeof commandArb extends fc.Arbitrary<infer C> ? C : never;

const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;

function payloadOf(size: number, salt: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (salt * 31 + i) & 0xff);
}

async function compare(log: StreamLog, model: Model): Promise<void> {
  expect(log.streamNames()).toEqual([...model.streams.keys()].sort());
  for (const [name, s] of model.streams) {
    expect(log.state(name)).toEqual(model.state(name));
    expect(log.streamConfig(name)).toEqual(s.config);
    for (let seq = Math.max(1, s.lastSeq - 12); seq <= s.lastSeq + 1; seq++) {
      expect(await log.getBySeq(name, seq)).toEqual(s.msgs.find((m) => m.seq === seq) ?? null);
    }
    for (const subject of SUBJECTS) {
      const mine = s.msgs.filter((m) => m.subject === subject);
      expect(await log.lastBySubject(name, subject)).toEqual(mine[mine.length - 1] ?? null);
      expect(log.seqsOfSubject(name, subject)).toEqual(mine.map((m) => m.seq));
    }
    for (const filter of FILTERS) {
      const want = s.msgs.filter((m) => matchSubject(filter, m.subject));
      expect(await collect(log.iterate(name, { filter }))).toEqual(want);
      const from = Math.max(1, s.lastSeq - 3);
      expect(
        await collect(log.iterate(name, { filter, fromSeq: from, toSeq: s.lastSeq - 1 })),
      ).toEqual(want.filter((m) => m.seq >= from && m.seq <= s.lastSeq - 1));
      // Last per subject as of a boundary below the end (the watch's initial values), with
      // and without markers, and count agreeing with iterate.
      for (const toSeq of [s.lastSeq, Math.max(1, s.lastSeq - 2)]) {
        for (const putsOnly of [false, true]) {
          const inRange = want.filter((m) => m.seq >= from - 2 && m.seq <= toSeq);
          const atOrBelow = want.filter((m) => m.seq <= toSeq);
          const last = inRange.filter(
            (m) =>
              !atOrBelow.some((o) => o.subject === m.subject && o.seq > m.seq) &&
              (!putsOnly || m.operation === "PUT"),
          );
          const opts = { filter, fromSeq: Math.max(1, from - 2), toSeq, putsOnly };
          expect(await collect(log.iterate(name, { ...opts, lastPerSubject: true }))).toEqual(last);
          expect(log.count(name, { ...opts, lastPerSubject: true })).toBe(last.length);
          const every = inRange.filter((m) => !putsOnly || m.operation === "PUT");
          expect(await collect(log.iterate(name, opts))).toEqual(every);
          expect(log.count(name, opts)).toBe(every.length);
        }
      }
      const subjects = [...new Set(want.map((m) => m.subject))].sort().map((subject) => {
        const mine = want.filter((m) => m.subject === subject);
        const last = mine[mine.length - 1]!;
        return { subject, lastSeq: last.seq, operation: last.operation, messages: mine.length };
      });
      expect(log.subjects(name, filter)).toEqual(subjects);
      // A listing resumed after any subject (present or not) is the rest of that list.
      for (const after of ["", ...SUBJECTS, "a.", "zz"]) {
        expect([...log.subjectsAfter(name, filter, after)]).toEqual(
          subjects.filter((i) => i.subject > after),
        );
      }
    }
  }
}

describe("StreamLog against a model", () => {
  it("agrees on every read after random operations", { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 30 }), async (commands) => {
        const dir = tempDir("streamkv-prop-");
        let log = await StreamLog.open(dir.path, { maxMessageSizeBytes: HARD_MAX_BYTES });
        const model = new Model();
        let clockMs = 1000;
        let salt = 0;
        try {
          for (const cmd of commands as Command[]) {
            switch (cmd.t) {
              case "create":
                expect(await attemptAsync(() => log.createStream(cmd.c))).toEqual(
                  attempt(() => model.create(cmd.c)),
                );
                break;
              case "update":
                expect(await attemptAsync(() => log.updateStream(cmd.c))).toEqual(
                  attempt(() => model.update(cmd.c)),
                );
                break;
              case "delete":
                expect(await attemptAsync(() => log.deleteStream(cmd.s))).toEqual(
                  attempt(() => model.delete(cmd.s)),
                );
                break;
              case "append":
              case "batch": {
                const list = cmd.t === "append" ? [cmd.a] : cmd.list;
                const batch = log.batch();
                for (const a of list) {
                  const payload = payloadOf(a.size, salt++);
                  const ts = Math.max(0, clockMs + a.jitterMs);
                  const got = attempt(() =>
                    batch.append(a.stream, {
                      subject: a.subject,
                      payload,
                      operation: a.operation,
                      timestampMs: ts,
                    }),
                  );
                  const want = attempt(() =>
                    model.append(a.stream, a.subject, payload, a.operation, ts),
                  );
                  expect(got).toEqual(want);
                }
                batch.putMeta("applied", payloadOf(4, salt));
                if (cmd.t === "batch") await compare(log, model);
                await batch.commit({ sync: salt % 2 === 0 });
                break;
              }
              case "purge":
                expect(
                  await attemptAsync(() =>
                    log.purge(cmd.s, { subject: cmd.subject, keep: cmd.keep }),
                  ),
                ).toEqual(attempt(() => model.purge(cmd.s, cmd.subject, cmd.keep)));
                break;
              case "expire": {
                const got = await attemptAsync(async () =>
                  (await log.expire(cmd.s, clockMs)).map((m) => m.seq),
                );
                expect(got).toEqual(attempt(() => model.expire(cmd.s, clockMs)));
                break;
              }
              case "remove":
                expect(await attemptAsync(() => log.removeMessage(cmd.s, cmd.seq))).toEqual(
                  attempt(() => model.remove(cmd.s, cmd.seq)),
                );
                break;
              case "tick":
                clockMs += cmd.ms;
                break;
              case "reopen": {
                const digest = await log.digest();
                const horizons = log.streamNames().map((name) => log.watchHorizon(name));
                await log.close();
                if (!cmd.clean) {
                  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir.path, VIEW);
                  await db.open();
                  expect(await deleteIndexCheckpoint(db as never)).toBe(true);
                  await db.close();
                }
                log = await StreamLog.open(dir.path, { maxMessageSizeBytes: HARD_MAX_BYTES });
                expect(log.opened.index.from).toBe(cmd.clean ? "checkpoint" : "scan");
                expect(await log.digest()).toBe(digest);
                expect(log.streamNames().map((name) => log.watchHorizon(name))).toEqual(horizons);
                break;
              }
            }
            await compare(log, model);
          }
        } finally {
          await log.close();
          dir.remove();
        }
      }),
      { numRuns: 150 },
    );
  });
});
