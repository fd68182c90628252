/** cli/common.ts: output that waits for a slow reader instead of buffering everything. */
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import type { Io } from "../node/index.js";
import { writeStreamed } from "./common.js";

/** A stdout whose buffer is "full" after every write until the test lets it drain. */
class SlowStdout extends EventEmitter {
  readonly writes: string[] = [];
  write(chunk: string | Uint8Array): boolean {
    this.writes.push(String(chunk));
    return false;
  }
}

describe("writeStreamed", () => {
  it("writes in chunks and waits for drain before the next one", async () => {
    const stdout = new SlowStdout();
    const io = { stdout } as unknown as Io;
    let produced = 0;
    async function* pieces(): AsyncIterable<string> {
      for (let i = 0; i < 50_000; i++) {
        produced++;
        yield `key-${String(i).padStart(8, "0")}\n`;
      }
    }
    const done = writeStreamed(io, pieces());
    // Without a drain the writer stops after one chunk: the producer is not read ahead.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stdout.writes).toHaveLength(1);
    expect(produced).toBeLessThan(5_100); // one 64 KiB chunk of 13-character lines
    for (let i = 0; i < 100 && stdout.listenerCount("drain") > 0; i++) {
      stdout.emit("drain");
      await new Promise((resolve) => setImmediate(resolve));
    }
    await done;
    expect(stdout.writes.join("")).toBe(
      Array.from({ length: 50_000 }, (_, i) => `key-${String(i).padStart(8, "0")}\n`).join(""),
    );
    expect(Math.max(...stdout.writes.map((w) => w.length))).toBeLessThan(70_000);
  });
});
