/**
 * `streamkv snapshot restore FILE --data DIR --id ID --peers ...`: seeds the data
 * directory of one member of a NEW cluster from a backup file, like `etcdutl snapshot
 * restore`. Every member is restored from the same file with its own --id and --data and
 * the same --peers, then started normally with those flags.
 *
 * The restored member is a node that installed a Raft snapshot: the image goes in through
 * the follower's import (`LogSnapshotWriter`, every chunk and record checked again), the
 * install records the snapshot meta (the backup's index and term, the NEW --peers as
 * voters) as an InstallSnapshot does, and the Raft log starts right after it with the
 * term as current term. All members then hold the same log prefix and elect a leader as
 * usual; revisions, histories and TTL clocks continue from the backup.
 *
 * Nothing is written before the file checked out whole (header, every chunk's length,
 * trailer, SHA-256); the restore then runs in a staging directory beside DIR, fsynced file
 * by file, and is renamed to DIR only when complete (then the parent is fsynced). A failure
 * removes the staging directory: DIR is the empty directory it was, or absent.
 */
import { mkdir, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { ClassicLevel } from "classic-level";
import { checkSnapshotMeta } from "../kvapi/index.js";
import { LogSnapshotWriter, StreamLog } from "../log/index.js";
import type { SnapshotHeader } from "../proto/index.js";
import type { SnapshotMeta } from "../raft/index.js";
import { openNodeRaftStorage } from "../raftstore/index.js";
import { BackupFileReader, fsyncPath } from "./backup_file.js";
import { ConfigError, deriveClusterId, type PeerAddress, parsePeers } from "./config.js";
import { isValidNodeId } from "./peer_address.js";
import { checkIdentity } from "./server.js";
import { installedSnapshotRecord } from "./snapshot_store.js";

export interface RestoreOptions {
  file: string;
  dataDir: string;
  id: string;
  /** `--peers` of the new cluster ("" = a single node). */
  peers: string;
  /** `--cluster-id` ("" = derived from the peers, as the server derives it). */
  clusterId?: string;
}

export interface RestoreResult {
  header: SnapshotHeader;
  dataDir: string;
  clusterId: string;
  voters: string[];
  imageBytes: number;
}

export async function restoreBackup(o: RestoreOptions): Promise<RestoreResult> {
  if (!isValidNodeId(o.id)) throw new ConfigError(`--id ${JSON.stringify(o.id)} is not a node id`);
  const peers = peersOf(o.peers, o.id);
  const clusterId = o.clusterId || deriveClusterId(peers);
  const dataDir = resolve(o.dataDir);
  await checkEmptyTarget(dataDir);
  // Pass 1: the whole file checks out before anything is written.
  const verified = await BackupFileReader.open(o.file);
  try {
    for await (const _ of verified.chunks()) {
      // chunks() checks lengths, the trailer and the SHA-256 as it goes.
    }
  } finally {
    await verified.close();
  }
  const header = verified.header;
  await mkdir(dirname(dataDir), { recursive: true, mode: 0o700 }).catch((err: Error) => {
    throw new ConfigError(`--data ${dataDir}: cannot create its parent: ${err.message}`);
  });
  const staging = join(dirname(dataDir), `.${basename(dataDir)}.restoring-${process.pid}`);
  const umask = process.umask(0o077);
  try {
    await mkdir(staging, { mode: 0o700 });
    const imageBytes = await importImage(o.file, staging, header, peers);
    checkIdentity(staging, o.id, clusterId);
    await fsyncTree(staging);
    // An empty DIR is replaced; rename() onto it would work on Linux, not everywhere.
    await rmdir(dataDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
    await rename(staging, dataDir);
    await fsyncPath(dirname(dataDir));
    return { header, dataDir, clusterId, voters: peers.map((p) => p.id), imageBytes };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException)?.code;
    // No room, no permission: the operator's to fix, like a data dir the server cannot write.
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
      throw new ConfigError(`--data ${dataDir}: cannot restore into it: ${(err as Error).message}`);
    }
    throw err;
  } finally {
    process.umask(umask);
  }
}

function peersOf(text: string, id: string): PeerAddress[] {
  const peers = parsePeers(text);
  // As the server does without --peers: a single node (its address does not name it).
  if (peers.length === 0) return [{ id, host: "127.0.0.1", port: 7421 }];
  if (!peers.some((p) => p.id === id)) {
    throw new ConfigError(
      `--id ${id} is not in --peers (${peers.map((p) => p.id).join(", ")}): a node must be one of its cluster's peers`,
    );
  }
  return peers;
}

async function checkEmptyTarget(dataDir: string): Promise<void> {
  let entries: string[];
  try {
    if (!(await stat(dataDir)).isDirectory()) {
      throw new ConfigError(`--data ${dataDir} exists and is not a directory`);
    }
    entries = await readdir(dataDir);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new ConfigError(`--data ${dataDir}: cannot look into it: ${(err as Error).message}`);
  }
  if (entries.length > 0) {
    throw new ConfigError(
      `--data ${dataDir} is not empty (${entries.length} entries): a restore seeds a new member; give an empty or new directory`,
    );
  }
}

/** Pass 2: the image through the follower's import, then the Raft storage after it. */
async function importImage(
  file: string,
  dir: string,
  header: SnapshotHeader,
  peers: PeerAddress[],
): Promise<number> {
  const db = new ClassicLevel<Uint8Array | string, Uint8Array>(join(dir, "db"), {
    keyEncoding: "view",
    valueEncoding: "view",
  });
  await db.open();
  try {
    const voters = peers.map((p) => p.id);
    const meta: SnapshotMeta = {
      index: header.raftIndex,
      term: header.raftTerm,
      conf: { voters, learners: [] },
    };
    const streamLog = await StreamLog.open(db);
    let imageBytes = 0;
    try {
      const writer = LogSnapshotWriter.begin(streamLog, { checkMeta: checkSnapshotMeta });
      const reader = await BackupFileReader.open(file);
      try {
        for await (const chunk of reader.chunks()) {
          await writer.write(chunk.offset, chunk.data, chunk.last);
          imageBytes = chunk.offset + chunk.data.byteLength;
        }
      } catch (err) {
        writer.abort();
        throw err;
      } finally {
        await reader.close();
      }
      // One synced write, as a follower's install (node/snapshot_store.ts). An empty
      // backup (index 0) stands for no snapshot: the members bootstrap as a new cluster.
      await writer.install(meta.index > 0 ? installedSnapshotRecord(meta) : {});
    } finally {
      await streamLog.close();
    }
    const storage = await openNodeRaftStorage(db, meta.conf);
    try {
      // The log restarts after the snapshot; the term is current, no vote cast yet.
      if (meta.index > 0) {
        await storage.persist({
          snapshot: meta,
          hardState: { currentTerm: meta.term, votedFor: null, commitIndex: meta.index },
        });
      }
    } finally {
      await storage.close();
    }
    return imageBytes;
  } finally {
    await db.close();
  }
}

/** Every file and directory under `dir`, and `dir` itself, fsynced. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(path);
    else if (entry.isFile()) await fsyncPath(path);
  }
  await fsyncPath(dir);
}
