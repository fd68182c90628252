/**
 * The `KvService` the client port and the ops endpoints hold for the life of the
 * process: it passes every call to the node's current service, or, while the node is
 * halted (its disk is full, see disk_full.ts), refuses it with the halt's error. The
 * node installs a reopened service with `resume`; the ports never notice the swap,
 * only that calls fail in between.
 */
import { KvError } from "../proto/index.js";
import type { ImageChunk } from "./backup_images.js";
import type {
  BucketConfigInput,
  BucketInfo,
  CallOptions,
  HistoryPage,
  KeysPage,
  KvService,
  NodeStatus,
  Readiness,
  ReadOptions,
  ServiceWatch,
  WatchOptions,
  WriteRequest,
} from "./kv_service.js";

export class ServiceSlot implements KvService {
  private halt: { error: KvError; status: NodeStatus } | undefined;

  constructor(private service: KvService) {}

  /** Whether calls are refused (the node's stores are closed). */
  get halted(): boolean {
    return this.halt !== undefined;
  }

  /** From now on every call fails with `error` (status keeps the last one, leaderless). */
  haltWith(error: KvError): void {
    if (this.halt) return;
    const last = this.service.status();
    this.halt = { error, status: { ...last, role: "unknown", leader: "" } };
  }

  /** Calls go to `service` again. */
  resume(service: KvService): void {
    this.service = service;
    this.halt = undefined;
  }

  private get live(): KvService {
    if (this.halt) throw this.halt.error;
    return this.service;
  }

  private async call<T>(f: (s: KvService) => Promise<T>): Promise<T> {
    return f(this.live);
  }

  createBucket(config: BucketConfigInput, requestId: string, opts?: CallOptions) {
    return this.call((s) => s.createBucket(config, requestId, opts));
  }
  bucketInfo(bucket: string, opts: ReadOptions) {
    return this.call((s) => s.bucketInfo(bucket, opts));
  }
  deleteBucket(bucket: string, requestId: string, opts?: CallOptions) {
    return this.call((s) => s.deleteBucket(bucket, requestId, opts));
  }
  listBuckets(opts: ReadOptions): Promise<BucketInfo[]> {
    return this.call((s) => s.listBuckets(opts));
  }
  write(request: WriteRequest): Promise<number> {
    return this.call((s) => s.write(request));
  }
  get(bucket: string, key: string, revision: number | undefined, opts: ReadOptions) {
    return this.call((s) => s.get(bucket, key, revision, opts));
  }
  largestValueBytes(bucket: string): number | undefined {
    return this.halt ? undefined : this.service.largestValueBytes?.(bucket);
  }
  keysPage(
    bucket: string,
    filter: string,
    after: string,
    limit: number,
    opts: ReadOptions,
  ): Promise<KeysPage> {
    return this.call((s) => s.keysPage(bucket, filter, after, limit, opts));
  }
  history(bucket: string, key: string, opts: ReadOptions) {
    return this.call((s) => s.history(bucket, key, opts));
  }
  historyPage(
    bucket: string,
    key: string,
    afterRevision: number,
    opts: ReadOptions & { maxBytes: number },
  ): Promise<HistoryPage> {
    return this.call((s) => s.historyPage(bucket, key, afterRevision, opts));
  }
  watch(bucket: string, filter: string, opts: WatchOptions): Promise<ServiceWatch> {
    return this.call((s) => s.watch(bucket, filter, opts));
  }
  purgeDeletes(
    bucket: string,
    olderThanMs: number | undefined,
    requestId: string,
    opts?: CallOptions,
  ): Promise<number> {
    return this.call((s) => s.purgeDeletes(bucket, olderThanMs, requestId, opts));
  }
  status(): NodeStatus {
    return this.halt ? this.halt.status : this.service.status();
  }
  transferLeadership(to: string, opts?: CallOptions): Promise<NodeStatus> {
    return this.call((s) => s.transferLeadership(to, opts));
  }
  removeServer(id: string, opts?: CallOptions): Promise<NodeStatus> {
    return this.call((s) => s.removeServer(id, opts));
  }
  addServer(id: string, address: string, opts?: CallOptions): Promise<NodeStatus> {
    return this.call((s) => s.addServer(id, address, opts));
  }
  openSnapshot() {
    return this.call(async (s) => {
      if (!s.openSnapshot) throw this.unsupported();
      return s.openSnapshot();
    });
  }
  readSnapshot(id: number, offset: number, maxBytes: number): Promise<ImageChunk> {
    return this.call(async (s) => {
      if (!s.readSnapshot) throw this.unsupported();
      return s.readSnapshot(id, offset, maxBytes);
    });
  }
  closeSnapshot(id: number): void {
    if (!this.halt) this.service.closeSnapshot?.(id);
  }
  async readiness(): Promise<Readiness> {
    if (this.halt) return { ready: false, reason: this.halt.error.message };
    return this.service.readiness();
  }
  /** Closes the current service (a halted node's is closed already). */
  async close(): Promise<void> {
    if (!this.halt) await this.service.close();
  }

  private unsupported(): KvError {
    return new KvError("INVALID_ARGUMENT", "this node does not serve snapshots");
  }
}
