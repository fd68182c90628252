/**
 * The image itself (deploy/Dockerfile): the server runs as the unprivileged user
 * with /data its own, Docker's HEALTHCHECK (GET /readyz) turns healthy once the node
 * leads, and `docker stop` (SIGTERM to node as PID 1) is a clean shutdown: exit 0,
 * well before Docker would SIGKILL, and the data is still there for the next start.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../client/index.js";
import { freePort, waitFor } from "../../test_support/index.js";
import { containerSuiteUnavailable, docker, IMAGE } from "./docker.js";

describe("the streamkv image", () => {
  const name = `streamkv-image-test-${process.pid}`;
  let port = 0;
  beforeAll(async () => {
    const missing = await containerSuiteUnavailable();
    if (missing) throw new Error(`the container suite cannot run: ${missing}`);
    port = await freePort();
  });
  afterAll(async () => {
    await docker(["rm", "-f", "-v", name]).catch(() => undefined);
  });

  it("runs unprivileged, turns healthy, and stops cleanly on SIGTERM", async () => {
    await docker(["run", "-d", "--name", name, "-p", `127.0.0.1:${port}:7420`, IMAGE]);
    const health = () => docker(["inspect", "-f", "{{.State.Health.Status}}", name]);
    await waitFor(async () => (await health()) === "healthy", 30_000, "healthy", 250);

    const ids = await docker([
      "exec",
      name,
      "node",
      "-p",
      "process.getuid()+' '+require('fs').statSync('/data').uid",
    ]);
    expect(ids).toBe("10001 10001");

    const nc = await connect({ servers: [`ws://127.0.0.1:${port}`], timeoutMs: 5000 });
    const kv = await nc.createKeyValue({ bucket: "image" });
    await kv.putString("kept", "yes");
    await nc.close();

    const before = Date.now();
    await docker(["stop", "--time", "20", name], 40_000);
    const stopMs = Date.now() - before;
    expect(await docker(["inspect", "-f", "{{.State.ExitCode}}", name])).toBe("0");
    expect(stopMs).toBeLessThan(10_000);
    const logs = await docker(["logs", name]).catch(() => "");
    expect(logs).not.toContain("exiting now");

    // The same container (same volume) starts again with the data.
    await docker(["start", name]);
    await waitFor(async () => (await health()) === "healthy", 30_000, "healthy again", 250);
    const again = await connect({ servers: [`ws://127.0.0.1:${port}`], timeoutMs: 5000 });
    const entry = await (await again.keyValue("image")).get("kept");
    await again.close();
    expect(entry && new TextDecoder().decode(entry.value)).toBe("yes");
  });
});
