/**
 * Runs in a real browser page (bundled by client/browser.test.ts with esbuild,
 * platform "browser"). It drives the client SDK against the server named by the
 * page's `?server=ws://...` query and publishes a plain-JSON report as the promise
 * `globalThis.streamkvReport`, which the test awaits over the DevTools protocol.
 * Everything is bounded: each step has a call timeout, each watch read a deadline.
 */
import { connect, isKvError, type KeyValue, type KvWatch } from "../index.js";

/** One observed watch event, reduced to what JSON can carry. */
export interface WatchEvent {
  key: string;
  value: string;
  revision: number;
  operation: string;
}

/** What the page reports; `error` is set (and the rest partial) when a step threw. */
export interface BrowserReport {
  /** Names of the steps that completed, in order. */
  steps: string[];
  error?: { name: string; message: string; code?: string; stack?: string };
  /** True when the page has no Node `process`/`require` and a native WebSocket. */
  isBrowser: boolean;
  /** How many sockets the client opened through the page's global WebSocket. */
  globalSocketsOpened: number;
  putRevision?: number;
  getValue?: string | null;
  getRevision?: number;
  createRevision?: number;
  createAgainCode?: string;
  createAgainCurrentRevision?: number;
  updateRevision?: number;
  staleUpdateCode?: string;
  missingGet?: null | "not-null";
  /** Initial values of the watch, then `null`, then the live update. */
  watchEvents: Array<WatchEvent | null>;
  closeAfterCallCode?: string;
  /** `connect` with a `tls` option: refused in a browser (its own TLS verifies wss://). */
  tlsOptionCode?: string;
  /** `connect` with a token to plain ws:// on a non-loopback host: refused. */
  insecureTokenCode?: string;
  /** Sockets opened by those two refusals (none: they fail before dialing). */
  socketsOpenedByRefusals?: number;
}

const READ_DEADLINE_MS = 5_000;

function countGlobalSockets(): () => number {
  const Native = globalThis.WebSocket;
  let opened = 0;
  // A subclass so `instanceof`, constants and behaviour stay native; only counts.
  class CountingWebSocket extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      opened += 1;
    }
  }
  globalThis.WebSocket = CountingWebSocket;
  return () => opened;
}

async function nextEvent(iterator: AsyncIterator<unknown>, what: string): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no ${what} within ${READ_DEADLINE_MS} ms`)),
      READ_DEADLINE_MS,
    );
  });
  try {
    const result = await Promise.race([iterator.next(), deadline]);
    if (result.done) throw new Error(`watch ended before ${what}`);
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

function toEvent(value: unknown): WatchEvent | null {
  if (value === null) return null;
  const e = value as { key: string; value: Uint8Array; revision: number; operation: string };
  return {
    key: e.key,
    value: new TextDecoder().decode(e.value),
    revision: e.revision,
    operation: e.operation,
  };
}

async function expectCode(what: string, action: () => Promise<unknown>) {
  try {
    await action();
  } catch (err) {
    if (isKvError(err)) return err;
    throw err;
  }
  throw new Error(`${what} succeeded but should have failed`);
}

async function run(serverUrl: string): Promise<BrowserReport> {
  const g = globalThis as { process?: unknown; require?: unknown };
  const report: BrowserReport = {
    steps: [],
    isBrowser:
      g.process === undefined && g.require === undefined && typeof WebSocket === "function",
    globalSocketsOpened: 0,
    watchEvents: [],
  };
  const socketsOpened = countGlobalSockets();
  const encoder = new TextEncoder();
  const step = (name: string) => report.steps.push(name);
  let watch: KvWatch | undefined;
  try {
    const pem = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    const tlsOption = await expectCode("a tls option", () =>
      connect({ servers: [serverUrl.replace(/^ws:/, "wss:")], tls: { ca: pem } }),
    );
    report.tlsOptionCode = tlsOption.code;
    step("refused tls option");
    // Never dialed: the refusal comes before any socket.
    const insecure = await expectCode("a token in clear text", () =>
      connect({ servers: ["ws://10.20.30.40:7420"], token: "t" }),
    );
    report.insecureTokenCode = insecure.code;
    report.socketsOpenedByRefusals = socketsOpened();
    step("refused token in clear text");
    const nc = await connect({ servers: [serverUrl], timeoutMs: 5_000, name: "browser-test" });
    step("connect");
    const kv: KeyValue = await nc.createKeyValue({ bucket: "browser", history: 5 });
    step("createKeyValue");

    report.putRevision = await kv.put("greeting", encoder.encode("hello"));
    step("put");
    const got = await kv.get("greeting");
    report.getValue = got ? new TextDecoder().decode(got.value) : null;
    report.getRevision = got?.revision;
    step("get");
    report.missingGet = (await kv.get("absent")) === null ? null : "not-null";
    step("get missing");

    report.createRevision = await kv.create("once", encoder.encode("first"));
    step("create");
    const exists = await expectCode("second create", () =>
      kv.create("once", encoder.encode("second")),
    );
    report.createAgainCode = exists.code;
    report.createAgainCurrentRevision = exists.details.currentRevision;
    step("create again");

    report.updateRevision = await kv.update(
      "once",
      encoder.encode("updated"),
      report.createRevision,
    );
    step("update");
    const stale = await expectCode("stale update", () =>
      kv.update("once", encoder.encode("stale"), report.createRevision ?? 0),
    );
    report.staleUpdateCode = stale.code;
    step("stale update");

    // Two keys exist now: the watch must deliver both latest values, then the null
    // marker, then a write made after the watch started.
    watch = await kv.watch(">");
    const iterator = watch[Symbol.asyncIterator]();
    step("watch");
    for (let i = 0; i < 3; i++) {
      const event = toEvent(await nextEvent(iterator, `initial event ${i + 1}`));
      report.watchEvents.push(event);
      if (event === null) break;
    }
    await kv.putString("live", "after-watch");
    report.watchEvents.push(toEvent(await nextEvent(iterator, "live update")));
    step("watch live update");
    watch.stop();
    watch = undefined;

    await nc.close();
    step("close");
    const closed = await expectCode("get after close", () => kv.get("greeting"));
    report.closeAfterCallCode = closed.code;
    step("call after close");
  } catch (err) {
    const e = err as Error & { code?: string };
    report.error = { name: e.name, message: e.message, code: e.code, stack: e.stack };
    watch?.stop();
  }
  report.globalSocketsOpened = socketsOpened();
  return report;
}

const server = new URLSearchParams(location.search).get("server") ?? "";
(globalThis as { streamkvReport?: Promise<BrowserReport> }).streamkvReport = run(server);
