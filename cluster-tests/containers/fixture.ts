/**
 * The container tests' fixture: inside a `describe`, fails the tests early (saying what
 * to do) when the suite cannot run here, and destroys the cluster a test started,
 * after each test.
 */
import { afterEach, beforeAll } from "vitest";
import { containerSuiteUnavailable } from "./docker.js";
import { DockerCluster } from "./docker_cluster.js";

export function dockerClusterPerTest(): typeof DockerCluster.start {
  let cluster: DockerCluster | undefined;
  beforeAll(async () => {
    const missing = await containerSuiteUnavailable();
    if (missing) throw new Error(`the container suite cannot run: ${missing}`);
  });
  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
  });
  return async (...args) => {
    cluster = await DockerCluster.start(...args);
    return cluster;
  };
}
