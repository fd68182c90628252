/**
 * `npm run bench -- nats-port [--ops=N] [--rounds=R]`: the official NATS KV client
 * (`@nats-io/kv` over `@nats-io/transport-node`) against a streamkv node's NATS port
 * (`--nats-port`) and against Debian's nats-server with JetStream, one node each, in the
 * same run: put and get, one at a time and 32 in flight, 100-byte values.
 *
 * The systems differ in durability: streamkv fsyncs before every ack, nats-server 2.9
 * acks from the page cache (bench/reference/nats.ts). A streamkv connection applies its
 * publishes one at a time, in the order sent (nats/README.md), so puts in flight on one
 * connection do not overlap there.
 */
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { freePort, startServer } from "../test_support/index.js";
import { intFlag, opsPerSecond } from "./_measure.js";
import { NATS_DURABILITY_NOTE, startNats } from "./reference/nats.js";
import { ReferenceMissingError } from "./reference/process.js";

const VALUE = new Uint8Array(100).fill(7);
const KEYS = 100;

interface Row {
  system: string;
  putSequential: number;
  getSequential: number;
  putConcurrent: number;
  getConcurrent: number;
}

async function measure(system: string, servers: string, ops: number): Promise<Row> {
  const nc = await connect({ servers, timeout: 10_000 });
  try {
    const kv = await new Kvm(nc).create(`bench${Date.now()}`, { history: 1 });
    const key = (i: number) => `k.${i % KEYS}`;
    const putSequential = await opsPerSecond(ops, 1, (i) => kv.put(key(i), VALUE));
    const getSequential = await opsPerSecond(ops, 1, (i) => kv.get(key(i)));
    const putConcurrent = await opsPerSecond(ops, 32, (i) => kv.put(key(i), VALUE));
    const getConcurrent = await opsPerSecond(ops, 32, (i) => kv.get(key(i)));
    return { system, putSequential, getSequential, putConcurrent, getConcurrent };
  } finally {
    await nc.close();
  }
}

export async function run(flags: string[]): Promise<void> {
  if (flags.includes("--help")) {
    console.log("usage: npm run bench -- nats-port [--ops=N (default 2000)] [--rounds=R (2)]");
    return;
  }
  const ops = intFlag(flags, "ops", 2000);
  const rounds = intFlag(flags, "rounds", 2);
  const rows: Row[] = [];
  for (let round = 0; round < rounds; round++) {
    const node = await startServer({ natsPort: await freePort() });
    try {
      rows.push(await measure("streamkv (NATS port)", `127.0.0.1:${node.natsPort}`, ops));
    } finally {
      await node.stop();
    }
    try {
      const ref = await startNats();
      try {
        rows.push(await measure(`nats-server ${ref.version}`, ref.nodes[0]!.url, ops));
      } finally {
        await ref.stop();
      }
    } catch (err) {
      if (!(err instanceof ReferenceMissingError)) throw err;
      console.log(`nats-server skipped: ${err.message}`);
    }
  }
  console.log(`@nats-io/kv, ${ops} ops of ${VALUE.length} B per figure, one node each (ops/s)`);
  console.log(
    "| system | put, 1 in flight | get, 1 in flight | put, 32 in flight | get, 32 in flight |",
  );
  console.log("|---|---|---|---|---|");
  for (const r of rows) {
    const f = (n: number) => Math.round(n).toLocaleString("en-US");
    console.log(
      `| ${r.system} | ${f(r.putSequential)} | ${f(r.getSequential)} | ${f(r.putConcurrent)} | ${f(r.getConcurrent)} |`,
    );
  }
  console.log(NATS_DURABILITY_NOTE);
}
