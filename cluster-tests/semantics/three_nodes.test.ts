/**
 * SEMANTICS.md through the client against a real three-node cluster: client `a` talks
 * to a follower only (its writes are forwarded to the leader), client `b` to the
 * leader; every read is made through both and must agree.
 */
import { afterAll, beforeAll } from "vitest";
import { LocalCluster } from "../harness/cluster.js";
import { semanticsSuite } from "./suite.js";

let cluster: LocalCluster | undefined;

beforeAll(async () => {
  cluster = await LocalCluster.start();
});

afterAll(async () => {
  await cluster?.destroy();
});

semanticsSuite("SEMANTICS.md on a three-node cluster (writes through a follower)", async () => {
  const c = cluster!;
  const leader = await c.waitForLeader();
  const follower = c.nodes.find((n) => n.index !== leader)!;
  return { servers: [follower.url], observers: [c.nodes[leader]!.url] };
});
