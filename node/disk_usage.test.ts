import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { directoryBytes, diskUsageOf } from "./disk_usage.js";

describe("disk usage of the data directory", () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), "streamkv-du-"));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("sums the files below the directory, nested ones included", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "db"));
    writeFileSync(join(dir, "node.json"), "x".repeat(100));
    writeFileSync(join(dir, "db", "000001.log"), "y".repeat(4000));
    expect(directoryBytes(dir, 1000)).toEqual({ bytes: 4100, complete: true });
  });

  it("stops at its entry bound and says the figure is a lower bound", () => {
    const dir = tempDir();
    for (let i = 0; i < 50; i++) writeFileSync(join(dir, `f${i}`), "z");
    const walked = directoryBytes(dir, 10);
    expect(walked.complete).toBe(false);
    expect(walked.bytes).toBeLessThanOrEqual(10);
  });

  it("reuses a walk within maxAgeMs and reads the file system's size and room", () => {
    const dir = tempDir();
    let now = 0;
    const usage = diskUsageOf(dir, { maxAgeMs: 1000, now: () => now });
    const first = usage();
    expect(first.dataDirBytes).toBe(0);
    expect(first.fsSizeBytes).toBeGreaterThan(0);
    expect(first.fsAvailableBytes).toBeGreaterThan(0);
    expect(first.fsAvailableBytes).toBeLessThanOrEqual(first.fsSizeBytes);
    writeFileSync(join(dir, "a"), "1234");
    now = 999;
    expect(usage().dataDirBytes).toBe(0);
    now = 1000;
    expect(usage().dataDirBytes).toBe(4);
  });

  it("answers for a directory that is gone (the scrape must not fail)", () => {
    const dir = join(tempDir(), "missing");
    expect(diskUsageOf(dir)()).toEqual({
      dataDirBytes: 0,
      complete: true,
      fsSizeBytes: 0,
      fsAvailableBytes: 0,
    });
  });
});
