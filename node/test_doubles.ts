/**
 * Test doubles of node/'s tests (the fuzz suites above all): a real lone-node
 * `RaftKvService` (Raft, kvapi, the stream log) on memory-level and in-memory Raft
 * storage, so thousands of fuzzed requests reach real code without a disk; a socket
 * stand-in for `ClientSession` that records what the handler sends and how it closes;
 * and the status of a lone leader for metrics.
 */
import { EventEmitter } from "node:events";
import { MemoryLevel } from "memory-level";
import type { WebSocket } from "ws";
import { StreamLog } from "../log/index.js";
import { applyConfChange, MemoryRaftStorage } from "../raft/index.js";
import type { NodeStatus } from "./kv_service.js";
import { silentLogger } from "./log.js";
import { RaftKvService, type RaftServiceStoreOptions } from "./raft_service.js";

/** A lone node that leads itself, with nothing in it (what metrics read in tests). */
export const loneLeaderStatus: NodeStatus = {
  id: "n1",
  role: "leader",
  term: 1,
  leader: "n1",
  commitIndex: 0,
  appliedIndex: 0,
  peers: [],
  buckets: [],
  replicated: true,
};

/** A lone node on memory stores; `fatals` collects what reached `onFatal`. */
export async function memoryService(
  options: Partial<RaftServiceStoreOptions> = {},
): Promise<{ service: RaftKvService; fatals: unknown[] }> {
  const fatals: unknown[] = [];
  const db = new MemoryLevel<Uint8Array | string, Uint8Array>({
    storeEncoding: "view",
    keyEncoding: "view",
    valueEncoding: "view",
  });
  const streamLog = await StreamLog.open(db);
  const storage = new MemoryRaftStorage({
    initialConf: { voters: ["n1"], learners: [] },
    applyConfChange,
  });
  const service = await RaftKvService.onStores(
    {
      id: "n1",
      peers: [{ id: "n1", host: "127.0.0.1", port: 1 }],
      log: silentLogger,
      send: () => {},
      onFatal: (err) => fatals.push(err),
      tickMs: 5,
      leaderWaitMs: 200,
      writeTimeoutMs: 200,
      ...options,
    },
    { streamLog, storage, close: () => db.close() },
  );
  return { service, fatals };
}

/** What `ClientSession` needs of a ws socket; frames sent and the close code are kept. */
export class FakeClientSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  readonly sent: Uint8Array[] = [];
  closeCode: number | undefined;

  send(data: Uint8Array, _opts: unknown, cb?: (err?: Error) => void): void {
    this.sent.push(data);
    queueMicrotask(() => cb?.());
  }

  close(code: number): void {
    if (this.readyState !== 1) return;
    this.closeCode = code;
    this.readyState = 2;
    queueMicrotask(() => this.terminate());
  }

  terminate(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.emit("close");
  }

  pause(): void {}
  resume(): void {}
  ping(): void {}

  /** Delivers one binary frame to the handler. */
  deliver(bytes: Uint8Array, isBinary = true): void {
    this.emit("message", Buffer.from(bytes), isBinary);
  }

  asWebSocket(): WebSocket {
    return this as unknown as WebSocket;
  }
}
