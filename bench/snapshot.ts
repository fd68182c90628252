/**
 * `npm run bench -- snapshot [--messages=N] [--bytes=B] [--chunk=C] [--dir=PATH]
 * [--keys=N] [--value-bytes=B] [--no-transfer] [--no-backup]`: two parts. The transfer:
 * exports a stream log of N messages of B payload bytes in chunks of C bytes
 * (log/snapshot.ts) and imports it into a second log, chunk by chunk, as a leader
 * and a follower do over the network (minus the network). Prints the rate of each
 * side and of the whole, and the heap growth while transferring (it stays near the
 * chunk size and the follower's in-memory index: nothing is built whole). The
 * reference in the same run: a plain iteration over the same messages. The backup
 * (bench/_snapshot_backup.ts): save, status and restore of --keys keys (default 100000)
 * through the CLI's code against a real three-node cluster.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogSnapshotReader, LogSnapshotWriter, StreamLog } from "../log/index.js";
import { runBackupBench } from "./_snapshot_backup.js";

function flag(flags: string[], name: string, fallback: number): number {
  const hit = flags.find((f) => f.startsWith(`--${name}=`));
  const n = hit === undefined ? fallback : Number(hit.slice(name.length + 3));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const MiB = 1024 * 1024;

export async function run(flags: string[]): Promise<void> {
  if (!flags.includes("--no-transfer")) await runTransferBench(flags);
  if (!flags.includes("--no-backup")) {
    console.log(
      "\n-- backup: streamkv snapshot save, status, restore (bench/_snapshot_backup.ts) --",
    );
    await runBackupBench(flags);
  }
}

async function runTransferBench(flags: string[]): Promise<void> {
  const messages = flag(flags, "messages", 50_000);
  const payloadBytes = flag(flags, "bytes", 1024);
  const chunkBytes = flag(flags, "chunk", 256 * 1024);
  const dirFlag = flags.find((f) => f.startsWith("--dir="))?.slice(6);
  const root = mkdtempSync(join(dirFlag ?? tmpdir(), "streamkv-bench-snap-"));
  try {
    const source = await StreamLog.open(join(root, "source"));
    const target = await StreamLog.open(join(root, "target"));
    const base = {
      maxAgeMs: 0,
      maxBytes: -1,
      maxMsgs: -1,
      maxMsgSize: -1,
      discard: "new",
    } as const;
    await source.createStream({ name: "KV_bench", maxMsgsPerSubject: 4, ...base });
    const payload = new Uint8Array(payloadBytes).fill(120);
    for (let i = 0; i < messages; ) {
      const b = source.batch();
      for (let j = 0; j < 500 && i < messages; j++, i++) {
        b.append("KV_bench", { subject: `k.${i % 20_000}`, payload, timestampMs: i });
      }
      await b.commit();
    }
    await source.writeMeta({ "kv/applied": new TextEncoder().encode("1") }, { sync: true });
    const stored = source.state("KV_bench").messages;
    const mb = (stored * payloadBytes) / MiB;

    let t = performance.now();
    let seen = 0;
    for await (const _ of source.iterate("KV_bench")) seen++;
    const iterateMs = performance.now() - t;

    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    t = performance.now();
    const reader = await LogSnapshotReader.open(source, "kv/applied");
    const writer = LogSnapshotWriter.begin(target);
    let offset = 0;
    let chunks = 0;
    let readMs = 0;
    let writeMs = 0;
    for (let i = 0; i < 10_000_000; i++) {
      const r0 = performance.now();
      const { data, done } = await reader.read(offset, chunkBytes);
      const w0 = performance.now();
      await writer.write(offset, data, done);
      writeMs += performance.now() - w0;
      readMs += w0 - r0;
      offset += data.byteLength;
      chunks++;
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      if (done) break;
    }
    reader.close();
    const i0 = performance.now();
    await writer.install();
    const installMs = performance.now() - i0;
    const totalMs = performance.now() - t;
    const same = (await source.digest()) === (await target.digest());
    console.log(
      `messages stored        ${stored} of ${payloadBytes} B (${mb.toFixed(1)} MiB payload)`,
    );
    console.log(`iterate (reference)    ${(seen / (iterateMs / 1000)).toFixed(0)} msgs/s`);
    console.log(
      `snapshot bytes         ${(offset / MiB).toFixed(1)} MiB in ${chunks} chunks of <= ${chunkBytes} B`,
    );
    console.log(`export (read chunks)   ${(mb / (readMs / 1000)).toFixed(1)} MiB/s payload`);
    console.log(`import (verify+write)  ${(mb / (writeMs / 1000)).toFixed(1)} MiB/s payload`);
    console.log(`install (one sync)     ${installMs.toFixed(1)} ms`);
    console.log(
      `end to end             ${(mb / (totalMs / 1000)).toFixed(1)} MiB/s, ${totalMs.toFixed(0)} ms`,
    );
    console.log(`heap growth (peak)     ${((heapPeak - heapBefore) / MiB).toFixed(1)} MiB`);
    console.log(`digests equal          ${same}`);
    await source.close();
    await target.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
