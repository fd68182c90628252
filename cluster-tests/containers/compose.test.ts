/**
 * deploy/docker-compose.yml as a user runs it: `up -d` gives three healthy nodes
 * that form one cluster (a write through one node is read through the others), and
 * `down -v` removes it all. Uses `docker compose` (plugin) or `docker-compose` (v1,
 * Debian's docker-compose package), whichever is there; with neither it fails
 * under CI and is skipped elsewhere, saying how to install one.
 */

import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../client/index.js";
import { freePorts, repoRoot, waitFor } from "../../test_support/index.js";
import { composeCommand, containerSuiteUnavailable, docker, IMAGE } from "./docker.js";

const run = promisify(execFile);
const compose = await composeCommand();
const install = "apt-get install -y docker-compose (Debian) or the docker compose plugin";
if (!compose && !process.env.CI) console.warn(`compose.test.ts skipped: no compose: ${install}`);

describe.skipIf(!compose && !process.env.CI)("deploy/docker-compose.yml", () => {
  const project = `streamkv-compose-${process.pid}`;
  let env: Record<string, string> = {};
  const composeRun = async (args: string[], timeoutMs = 60_000) => {
    if (!compose) throw new Error(`no docker compose: ${install}`);
    const file = join(repoRoot, "deploy", "docker-compose.yml");
    const [cmd, ...pre] = compose;
    const { stdout } = await run(cmd!, [...pre, "-p", project, "-f", file, ...args], {
      env: { ...process.env, ...env },
      timeout: timeoutMs,
    });
    return stdout;
  };
  beforeAll(async () => {
    const missing = await containerSuiteUnavailable();
    if (missing) throw new Error(`the container suite cannot run: ${missing}`);
    const ports = await freePorts(3);
    env = {
      STREAMKV_IMAGE: IMAGE,
      STREAMKV_N1_PORT: String(ports[0]),
      STREAMKV_N2_PORT: String(ports[1]),
      STREAMKV_N3_PORT: String(ports[2]),
    };
  });
  afterAll(async () => {
    if (compose) await composeRun(["down", "-v", "--timeout", "5"]).catch(() => undefined);
  });

  it("up gives a healthy three-node cluster that replicates, down -v removes it", async () => {
    await composeRun(["up", "-d"]);
    const ids = (await composeRun(["ps", "-q"])).split("\n").filter(Boolean);
    expect(ids).toHaveLength(3);
    await waitFor(
      async () => {
        const states = await Promise.all(
          ids.map((id) => docker(["inspect", "-f", "{{.State.Health.Status}}", id])),
        );
        return states.every((s) => s === "healthy");
      },
      60_000,
      "three healthy nodes",
      500,
    );
    const urls = ["N1", "N2", "N3"].map((n) => `ws://127.0.0.1:${env[`STREAMKV_${n}_PORT`]}`);
    const writer = await connect({ servers: [urls[0]!], timeoutMs: 5000 });
    const kv = await writer.createKeyValue({ bucket: "compose" });
    const revision = await kv.putString("hello", "from n1");
    await writer.close();
    for (const url of urls.slice(1)) {
      const reader = await connect({ servers: [url], timeoutMs: 5000 });
      const e = await (await reader.keyValue("compose")).get("hello");
      await reader.close();
      expect(e?.revision).toBe(revision);
      expect(e && new TextDecoder().decode(e.value)).toBe("from n1");
    }

    await composeRun(["down", "-v", "--timeout", "5"]);
    const volumes = await docker([
      "volume",
      "ls",
      "-q",
      "--filter",
      `label=com.docker.compose.project=${project}`,
    ]);
    expect(volumes).toBe("");
  });
});
