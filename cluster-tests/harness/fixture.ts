/**
 * Per-test ownership of a cluster and its client connections: whatever a test
 * starts through the fixture is closed and destroyed after it, even when it
 * fails, so no server process outlives its test.
 */
import { afterEach } from "vitest";
import { type ConnectOptions, connect, type KvConnection } from "../../client/index.js";
import { type ClusterOptions, LocalCluster } from "./cluster.js";

export interface ClusterFixture {
  start(options?: ClusterOptions): Promise<LocalCluster>;
  connect(options: ConnectOptions): Promise<KvConnection>;
}

/** Call at the top level of a test file; registers its own afterEach. */
export function clusterFixture(): ClusterFixture {
  let cluster: LocalCluster | undefined;
  const conns: KvConnection[] = [];
  afterEach(async () => {
    await Promise.all(conns.splice(0).map((c) => c.close()));
    await cluster?.destroy();
    cluster = undefined;
  });
  return {
    async start(options) {
      cluster = await LocalCluster.start(options);
      return cluster;
    },
    async connect(options) {
      const nc = await connect(options);
      conns.push(nc);
      return nc;
    },
  };
}
