/**
 * The node's logs as an operator reads them, from a real `streamkv server` process:
 * `--log-level` (which wins over STREAMKV_LOG_LEVEL), one JSON object per line carrying
 * the node id and, once Raft runs, its term and role; the leader change at info; and
 * no line per KV request at info.
 */
import { describe, expect, it } from "vitest";
import { connect } from "../client/index.js";
import { runCli, startServer, waitFor } from "../test_support/index.js";
import { processFixture } from "./test_fixture.js";

const fx = processFixture();

interface LogLine {
  time: string;
  level: string;
  msg: string;
  node: string;
  term?: number;
  role?: string;
}

/** Every stderr line must be one JSON object. */
function lines(stderr: string): LogLine[] {
  return stderr
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const parsed = JSON.parse(l) as LogLine;
      expect(typeof parsed.time).toBe("string");
      return parsed;
    });
}

describe("logs", () => {
  it("at info: JSON lines with node, term and role; the leader change; nothing per KV op", async () => {
    const node = await startServer({ args: ["--id", "logger", "--log-level", "info"] });
    fx.nodes.push(node);
    await waitFor(
      () => lines(node.stderr()).some((l) => l.msg === "leader changed"),
      10_000,
      "the leader change logged",
    );
    const elected = lines(node.stderr()).find((l) => l.msg === "leader changed")!;
    expect(elected).toMatchObject({ level: "info", node: "logger", term: 1, role: "leader" });
    const started = lines(node.stderr()).find((l) => l.msg === "started")!;
    expect(started).toMatchObject({ level: "info", node: "logger" });
    expect(typeof started.term).toBe("number");
    expect(typeof started.role).toBe("string");
    for (const l of lines(node.stderr())) expect(l.node).toBe("logger");

    const nc = await connect({ servers: [node.url], timeoutMs: 10_000 });
    fx.conns.push(nc);
    const kv = await nc.createKeyValue({ bucket: "quiet" });
    // An admin operation is audited, one line each (README Security).
    await waitFor(
      () => lines(node.stderr()).some((l) => l.msg === "audit" && l.role === "leader"),
      5000,
      "the bucket create audited",
    );
    const before = lines(node.stderr()).length;
    for (let i = 0; i < 100; i++) {
      await kv.putString(`k${i % 7}`, `v${i}`);
      await kv.get(`k${i % 7}`);
    }
    await kv.keys();
    // Nothing at all for 201 KV requests.
    expect(lines(node.stderr()).slice(before)).toEqual([]);
  });

  it("--log-level warn leaves info out; the flag wins over STREAMKV_LOG_LEVEL", async () => {
    const node = await startServer({
      args: ["--log-level", "warn"],
      env: { STREAMKV_LOG_LEVEL: "debug" },
    });
    fx.nodes.push(node);
    const nc = await connect({ servers: [node.url], timeoutMs: 10_000 });
    fx.conns.push(nc);
    await (await nc.createKeyValue({ bucket: "w" })).putString("k", "v");
    await nc.close();
    await node.stop("SIGTERM");
    // Stopping logs at info ("stopping", "stopped"): none of it may show.
    const levels = new Set(lines(node.stderr()).map((l) => l.level));
    expect([...levels].filter((l) => l !== "warn" && l !== "error")).toEqual([]);
  });

  it("--log-level debug includes the info lines", async () => {
    const node = await startServer({ args: ["--log-level", "debug"] });
    fx.nodes.push(node);
    await waitFor(() => lines(node.stderr()).some((l) => l.msg === "started"), 10_000, "started");
  });

  it("refuses a level it does not know, naming the ones it does (exit 2)", async () => {
    const r = await runCli(["server", "--log-level", "verbose"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'streamkv server: --log-level "verbose": use one of debug, info, warn, error\n',
    );
  });
});
