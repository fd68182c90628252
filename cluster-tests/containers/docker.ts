/**
 * The docker CLI for what testcontainers does not cover (kill -9, start again,
 * inspect), and the one check that tells a developer what is missing and what to do.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The image the suite runs (deploy/build-image.sh builds it). */
export const IMAGE = process.env.STREAMKV_IMAGE ?? "streamkv:local";

export async function docker(args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await run("docker", args, { timeout: timeoutMs });
  return stdout.trim();
}

/** What keeps the container suite from running here, with what to do; undefined = ready. */
export async function containerSuiteUnavailable(): Promise<string | undefined> {
  try {
    await docker(["--version"], 10_000);
  } catch {
    return "no docker command: apt-get install -y docker.io (Debian), then start dockerd";
  }
  try {
    await docker(["info", "--format", "{{.ServerVersion}}"], 10_000);
  } catch (err) {
    const why = String((err as { stderr?: string }).stderr ?? err)
      .trim()
      .split("\n")[0];
    return `no Docker engine answers (${why}): start one, e.g. \`dockerd >/tmp/dockerd.log 2>&1 &\` as root, or set DOCKER_HOST to its socket`;
  }
  try {
    await docker(["image", "inspect", "--format", "{{.Id}}", IMAGE], 10_000);
  } catch {
    return `no image ${IMAGE}: build it with deploy/build-image.sh (no registry needed)`;
  }
  if (process.getuid?.() !== 0) {
    return "partitions cut a container off with iptables in its network namespace (nsenter): run the suite as root on the Docker host";
  }
  return undefined;
}

/** `docker compose` (the plugin) or `docker-compose` (v1), whichever works; undefined if neither. */
export async function composeCommand(): Promise<string[] | undefined> {
  for (const cmd of [["docker", "compose"], ["docker-compose"]]) {
    try {
      await run(cmd[0]!, [...cmd.slice(1), "version"], { timeout: 10_000 });
      return cmd;
    } catch {
      // try the next one
    }
  }
  return undefined;
}
