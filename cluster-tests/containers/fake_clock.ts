/**
 * A node's wall clock moved at run time, in its container only: Debian's libfaketime,
 * bind-mounted read-only from the host into the containers at test time (never part of
 * the image), preloaded into the server by LD_PRELOAD, reading its offset and rate from
 * a file in a host temp dir (one file per node, mounted read-only too). Writing
 * "+3600 x1" there moves that node's Date.now() (CLOCK_REALTIME) an hour ahead.
 *
 * Every node of such a cluster gets the preload, since the node to strike (the leader,
 * a follower) is known only during the run; only the struck node's file is ever off
 * "+0 x1", so the others keep real time.
 *
 * CLOCK_MONOTONIC stays real (FAKETIME_DONT_FAKE_MONOTONIC=1): Node's timers, and with
 * them Raft's ticks, election timeouts and heartbeats, run on it, and no operating
 * system steps it. Real clock faults are steps and drift of the wall clock (NTP, a VM
 * resumed or migrated, a wrong RTC); a process that stops altogether is the pause
 * nemesis. So this fakes what breaks in production, and what streamkv reads from the
 * wall clock (node/clock.ts's systemClock): the leader's stamp on every command, which
 * becomes the entries' created time and the replicated TTL clock
 * (node/leader_proposer.ts), the leader-contact check that ends watches on a node out of
 * touch (node/leader_contact.ts), deadlines of forwarded writes, logs.
 *
 * FAKETIME_CACHE_DURATION=1: libfaketime re-reads the file at most once a second
 * (FAKETIME_NO_CACHE=1 re-reads it on every clock call, which made a loop of Date.now()
 * calls four times slower here); `DockerCluster.setClock` waits until the node's HTTP
 * Date header shows the new time instead.
 *
 * libfaketime's rate ("x3") counts from the process start: switching it on steps the
 * clock by (rate - 1) x uptime, then it drifts; "x1" must be written to end it (an
 * offset alone keeps the last rate).
 */
import {
  accessSync,
  chmodSync,
  constants,
  mkdtempSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Debian's libfaketime (`apt-get install -y libfaketime`); STREAMKV_LIBFAKETIME overrides. */
export const LIBFAKETIME =
  process.env.STREAMKV_LIBFAKETIME ?? "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

const SO_IN_CONTAINER = "/opt/faketime/libfaketime.so.1";
const DIR_IN_CONTAINER = "/faketime";

/** A wall clock: real time + `offsetS`, running `rate` times as fast (default 1). */
export interface ClockSetting {
  offsetS: number;
  rate?: number;
}

/** libfaketime's file syntax: "+3600 x1", "-3600 x1", "+0 x3". */
export function faketimeSpec(s: ClockSetting): string {
  const rate = s.rate ?? 1;
  if (!Number.isSafeInteger(s.offsetS) || !(rate > 0)) {
    throw new Error(`bad clock setting ${JSON.stringify(s)}`);
  }
  return `${s.offsetS < 0 ? "" : "+"}${s.offsetS} x${rate}`;
}

/** Why libfaketime cannot be used here (undefined = it can). */
export function libfaketimeMissing(): string | undefined {
  try {
    accessSync(LIBFAKETIME, constants.R_OK);
    return undefined;
  } catch {
    return `no ${LIBFAKETIME}: apt-get install -y libfaketime (Debian), or set STREAMKV_LIBFAKETIME to the library`;
  }
}

/** The host side: one offset file per node in a temp dir the containers mount read-only. */
export class FakeClockFiles {
  readonly dir: string;

  constructor(readonly ids: readonly string[]) {
    const missing = libfaketimeMissing();
    if (missing) throw new Error(missing);
    this.dir = mkdtempSync(join(tmpdir(), "streamkv-faketime-"));
    // The server runs as uid 10001: the dir and files must be readable by it.
    chmodSync(this.dir, 0o755);
    for (const id of ids) this.write(id, { offsetS: 0 });
  }

  /** What container `id` needs: the library and the dir (both read-only), and the env. */
  containerOptions(id: string): {
    bindMounts: { source: string; target: string; mode: "ro" }[];
    env: Record<string, string>;
  } {
    return {
      bindMounts: [
        { source: LIBFAKETIME, target: SO_IN_CONTAINER, mode: "ro" },
        { source: this.dir, target: DIR_IN_CONTAINER, mode: "ro" },
      ],
      env: {
        LD_PRELOAD: SO_IN_CONTAINER,
        FAKETIME_TIMESTAMP_FILE: `${DIR_IN_CONTAINER}/${id}`,
        FAKETIME_CACHE_DURATION: "1",
        // Timers and Raft's elections stay on the real monotonic clock (see above).
        FAKETIME_DONT_FAKE_MONOTONIC: "1",
      },
    };
  }

  /** Replaces node `id`'s setting at once (a rename: libfaketime never reads half a file). */
  write(id: string, s: ClockSetting): void {
    const tmp = join(this.dir, `.${id}.tmp`);
    writeFileSync(tmp, `${faketimeSpec(s)}\n`, { mode: 0o644 });
    renameSync(tmp, join(this.dir, id));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
