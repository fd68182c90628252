/**
 * Test support (Node side): starts a headless Chromium and speaks the Chrome DevTools
 * Protocol to it over the `ws` package, so the browser test needs no extra dependency
 * and never downloads a browser. Only what the test uses: open a page, evaluate an
 * expression (awaiting a promise), collect console output and page errors.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";

/**
 * Where Debian's `chromium` package puts the binary. STREAMKV_CHROMIUM, when set,
 * is the only candidate (so a wrong path reads as "no browser", not as a fallback).
 */
export function findChromium(): string | undefined {
  const override = process.env.STREAMKV_CHROMIUM;
  const candidates = override ? [override] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
  return candidates.find((path) => existsSync(path));
}

export interface Chromium {
  pid: number;
  /** Console lines and uncaught page errors, for failure messages. */
  log: string[];
  /** Opens `url` in a new tab and returns the tab's session. */
  openPage(url: string): Promise<PageSession>;
  /** Closes the browser politely, then kills its process group; removes the profile. */
  close(): Promise<void>;
}

export interface PageSession {
  /** Evaluates `expression` in the page, awaiting a returned promise; returns JSON. */
  evaluate(expression: string, timeoutMs: number): Promise<unknown>;
}

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-crash-reporter",
  "--disable-breakpad",
  "--disable-dev-shm-usage",
  "--remote-debugging-address=127.0.0.1",
  "--remote-debugging-port=0",
];

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Starts Chromium with a fresh profile; fails if DevTools is not up within `timeoutMs`. */
export async function launchChromium(binary: string, timeoutMs = 15_000): Promise<Chromium> {
  const profileDir = mkdtempSync(join(tmpdir(), "streamkv-chromium-"));
  // detached: its own process group, so close() can end the renderer/zygote children
  // by the group id of the process we started.
  const proc = spawn(binary, [...FLAGS, `--user-data-dir=${profileDir}`, "about:blank"], {
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  assert(proc.pid !== undefined, `cannot start ${binary}`);
  const pid = proc.pid;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  let stderr = "";
  proc.on("error", (err) => {
    stderr += `\nspawn error: ${err.message}`;
  });
  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {}
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    rmSync(profileDir, { recursive: true, force: true });
  };
  let browserUrl: string;
  try {
    browserUrl = await devToolsUrl(
      proc,
      timeoutMs,
      () => stderr,
      (chunk) => {
        stderr += chunk;
      },
    );
  } catch (err) {
    await kill();
    throw err;
  }
  const socket = new WebSocket(browserUrl, { perMessageDeflate: false });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
  } catch (err) {
    await kill();
    throw err;
  }

  const log: string[] = [];
  const pending = new Map<number, { resolve(r: CdpMessage): void; reject(e: Error): void }>();
  let nextId = 1;
  socket.on("message", (data) => {
    const msg = JSON.parse(String(data)) as CdpMessage;
    if (msg.id !== undefined) {
      const waiter = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) waiter?.reject(new Error(`CDP: ${msg.error.message}`));
      else waiter?.resolve(msg);
      return;
    }
    if (msg.method === "Runtime.consoleAPICalled") {
      const args = (msg.params?.args as { value?: unknown; description?: string }[]) ?? [];
      log.push(
        `console.${msg.params?.type}: ${args.map((a) => a.description ?? String(a.value)).join(" ")}`,
      );
    } else if (msg.method === "Runtime.exceptionThrown") {
      const details = msg.params?.exceptionDetails as {
        text?: string;
        exception?: { description?: string };
      };
      log.push(`page error: ${details?.exception?.description ?? details?.text}`);
    }
  });
  socket.on("close", () => {
    for (const waiter of pending.values()) waiter.reject(new Error("CDP socket closed"));
    pending.clear();
  });

  const send = (
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
    timeout = 10_000,
  ): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`CDP ${method}: no answer within ${timeout} ms`));
      }, timeout);
      pending.set(id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m.result ?? {});
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      socket.send(JSON.stringify({ id, method, params, sessionId }));
    });

  const openPage = async (url: string): Promise<PageSession> => {
    const { targetId } = await send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
    assert(typeof sessionId === "string", "CDP: attachToTarget returned no sessionId");
    await send("Runtime.enable", {}, sessionId);
    await send("Page.enable", {}, sessionId);
    const nav = await send("Page.navigate", { url }, sessionId);
    if (typeof nav.errorText === "string") throw new Error(`cannot load ${url}: ${nav.errorText}`);
    return {
      async evaluate(expression, evalTimeoutMs) {
        const result = await send(
          "Runtime.evaluate",
          { expression, awaitPromise: true, returnByValue: true },
          sessionId,
          evalTimeoutMs,
        );
        const thrown = result.exceptionDetails as
          | { text?: string; exception?: { description?: string } }
          | undefined;
        if (thrown) {
          throw new Error(`page threw: ${thrown.exception?.description ?? thrown.text}`);
        }
        return (result.result as { value?: unknown }).value;
      },
    };
  };

  const close = async () => {
    try {
      await send("Browser.close", {}, undefined, 3_000);
    } catch {}
    socket.terminate();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
    await kill();
  };

  return { pid, log, openPage, close };
}

/** Waits for Chromium's "DevTools listening on ws://..." line on stderr. */
function devToolsUrl(
  proc: ChildProcess,
  timeoutMs: number,
  stderr: () => string,
  append: (chunk: string) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`chromium: no DevTools endpoint within ${timeoutMs} ms: ${stderr()}`)),
      timeoutMs,
    );
    proc.stderr!.on("data", (chunk) => {
      append(String(chunk));
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(stderr());
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited (${code ?? signal}) before DevTools was up: ${stderr()}`));
    });
  });
}
