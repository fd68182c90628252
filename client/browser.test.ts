/**
 * The client SDK in a real browser (issue 5): client/browser_fixture/page.ts, which
 * imports client/index.ts, is bundled by esbuild for platform "browser" (a Node
 * built-in anywhere on the import path fails the bundle), served from a throwaway
 * HTTP server on 127.0.0.1 and run in headless Chromium against a real
 * `streamkv server` process. The page reports through a global; this test asserts it.
 *
 * Without a Chromium binary the test is skipped, unless CI is set: CI installs
 * Chromium (.ci/run), so there a missing browser is a failure.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir, type ServerProcess, startServer } from "../test_support/index.js";
import { type Chromium, findChromium, launchChromium } from "./browser_fixture/chromium.js";
import type { BrowserReport } from "./browser_fixture/page.js";

const clientDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(clientDir, "..");
const chromium = findChromium();
const ciValue = process.env.CI ?? "";
const inCi = ciValue !== "" && ciValue !== "0" && ciValue.toLowerCase() !== "false";
const skip = chromium === undefined && !inCi;
const missing =
  "no Chromium binary at /usr/bin/chromium (or at $STREAMKV_CHROMIUM); " +
  "install it with `apt-get install -y chromium`";
if (skip) console.warn(`client/browser.test.ts skipped: ${missing} (CI is not set)`);

interface Bundle {
  code: string;
  inputs: string[];
}

/** Bundles the page for a browser; returns the code and the repo-relative inputs. */
async function bundlePage(): Promise<Bundle> {
  const result = await build({
    entryPoints: [join(clientDir, "browser_fixture", "page.ts")],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    // socket.ts loads `ws` by dynamic import only when there is no global WebSocket;
    // left external, it stays an unexecuted `import("ws")` in the bundle.
    external: ["ws"],
    metafile: true,
    logLevel: "silent",
    absWorkingDir: repoRoot,
  });
  const code = result.outputFiles[0]!.text;
  const inputs = Object.keys(result.metafile.inputs).map((p) =>
    relative(repoRoot, join(repoRoot, p)).split(sep).join("/"),
  );
  return { code, inputs };
}

function servePage(bundle: string): Promise<Server> {
  const html =
    '<!doctype html><html><head><meta charset="utf-8"><title>streamkv browser test</title>' +
    '<script type="module" src="/page.js"></script></head><body></body></html>';
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    } else if (path === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(bundle);
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

describe.skipIf(skip)("client SDK in headless Chromium", () => {
  let bundle: Bundle;
  let kvServer: ServerProcess | undefined;
  let http: Server | undefined;
  let browser: Chromium | undefined;

  beforeAll(async () => {
    if (chromium === undefined) {
      throw new Error(`CI=${ciValue}: the browser test must run, but ${missing}`);
    }
    bundle = await bundlePage();
    [kvServer, http, browser] = await Promise.all([
      startServer(),
      servePage(bundle.code),
      launchChromium(chromium),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
    if (kvServer) {
      await kvServer.stop();
      removeDir(kvServer.dataDir);
    }
  });

  it("bundles for the browser from client/, proto/ and protobufjs only", () => {
    // "(disabled):fs" is protobufjs's optional fs, which its package.json `browser`
    // field maps to an empty module; `long` is protobufjs's own dependency.
    const allowed = [
      "client/",
      "proto/",
      "node_modules/protobufjs/",
      "node_modules/@protobufjs/",
      "node_modules/long/",
      "(disabled):",
    ];
    const outside = bundle.inputs.filter((p) => !allowed.some((prefix) => p.startsWith(prefix)));
    expect(outside).toEqual([]);
    expect(bundle.inputs).toContain("client/index.ts");
    expect(bundle.inputs.some((p) => p.startsWith("node_modules/ws/"))).toBe(false);
  });

  it("refuses a tls option and a token in clear text, connects, writes, reads, compares-and-sets, watches and closes", async () => {
    const { url } = kvServer!;
    const pageUrl = `http://127.0.0.1:${(http!.address() as AddressInfo).port}/?server=${encodeURIComponent(url)}`;
    const page = await browser!.openPage(pageUrl);
    // The module script sets the global once it ran; wait for it, then await it.
    const deadline = Date.now() + 10_000;
    while ((await page.evaluate("typeof globalThis.streamkvReport", 5_000)) !== "object") {
      if (Date.now() > deadline) {
        throw new Error(`page never started:\n${browser!.log.join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const report = (await page.evaluate("globalThis.streamkvReport", 20_000)) as BrowserReport;
    const context = `browser log:\n${browser!.log.join("\n")}\nreport: ${JSON.stringify(report, null, 2)}`;

    expect(report.error, context).toBeUndefined();
    expect(report.steps, context).toEqual([
      "refused tls option",
      "refused token in clear text",
      "connect",
      "createKeyValue",
      "put",
      "get",
      "get missing",
      "create",
      "create again",
      "update",
      "stale update",
      "watch",
      "watch live update",
      "close",
      "call after close",
    ]);
    expect(report.isBrowser).toBe(true);
    // At least one: a reconnect on a busy machine would open another, also through the global.
    expect(report.globalSocketsOpened).toBeGreaterThanOrEqual(1);

    const put = report.putRevision!;
    expect(Number.isSafeInteger(put) && put >= 1).toBe(true);
    expect(report.getValue).toBe("hello");
    expect(report.getRevision).toBe(put);
    expect(report.missingGet).toBeNull();
    const created = report.createRevision!;
    expect(created).toBeGreaterThan(put);
    expect(report.createAgainCode).toBe("KEY_EXISTS");
    expect(report.createAgainCurrentRevision).toBe(created);
    const updated = report.updateRevision!;
    expect(updated).toBeGreaterThan(created);
    expect(report.staleUpdateCode).toBe("WRONG_LAST_REVISION");

    expect(report.watchEvents).toHaveLength(4);
    expect(report.watchEvents.slice(0, 3)).toEqual([
      { key: "greeting", value: "hello", revision: put, operation: "PUT" },
      { key: "once", value: "updated", revision: updated, operation: "PUT" },
      null,
    ]);
    const live = report.watchEvents[3]!;
    expect(live).toMatchObject({ key: "live", value: "after-watch", operation: "PUT" });
    expect(live.revision).toBeGreaterThan(updated);

    expect(report.closeAfterCallCode).toBe("CONNECTION_CLOSED");
    expect(report.tlsOptionCode).toBe("INVALID_ARGUMENT");
    expect(report.insecureTokenCode).toBe("INSECURE_TRANSPORT");
    expect(report.socketsOpenedByRefusals).toBe(0);
  });
});
