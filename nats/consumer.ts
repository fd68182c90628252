/**
 * An ordered, ephemeral push consumer on a KV stream, as KV clients create them for
 * watch, keys and history: delivered from streamkv's watch engine.
 *
 * The initial values (everything before the watch's `null`) are read first and held,
 * so the create response can carry `num_pending` (clients use it to know when the
 * initial values end); they are bounded in entries and bytes, beyond which the create
 * fails. Delivery starts once the deliver subject has a subscriber (the client
 * subscribes after the create answer), stops at CONSUMER.DELETE, when that interest
 * goes, when the owning connection closes, or when the watch ends. Each message's reply
 * subject is the `$JS.ACK...` subject clients parse for stream and consumer sequence,
 * timestamp and pending count. Idle heartbeats (status 100) go out when nothing else
 * did for `idle_heartbeat`; flow-control requests are never sent.
 */
import type { Entry } from "../kvapi/index.js";
import type { NatsConnection } from "./connection.js";
import { entryHeaders, nanosOf } from "./streams.js";
import type { NatsWatch } from "./types.js";

export interface ConsumerOutput {
  /** Delivers to every subscription `target` reaches, as a message on `subject`. */
  send(
    target: string,
    subject: string,
    reply: string | undefined,
    headers: [string, string][] | undefined,
    status: { code: number; description: string } | undefined,
    payload: Uint8Array,
  ): void;
  hasInterest(subject: string): boolean;
  /** Resolves once the owner's unsent output is below its low-water mark. */
  writable(owner: NatsConnection): Promise<void>;
}

export interface PushConsumerSpec {
  stream: string;
  name: string;
  deliverSubject: string;
  headersOnly: boolean;
  idleHeartbeatMs: number;
  config: Record<string, unknown>;
  owner: NatsConnection;
  /** A consumer nobody subscribes to within this is removed. */
  noInterestTimeoutMs: number;
}

const EMPTY = new Uint8Array(0);

export class PushConsumer {
  readonly created = new Date();
  private consumerSeq = 0;
  private lastStreamSeq = 0;
  private stopped = false;
  private hadInterest = false;
  private lastSentAt = Date.now();
  private heartbeat: NodeJS.Timeout | undefined;
  private noInterestTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly spec: PushConsumerSpec,
    private readonly watch: NatsWatch,
    /** The initial values, oldest first (consumed as they are delivered). */
    private readonly initial: Entry[],
    /** Whether a live entry's key is one the consumer delivers (several filters). */
    private readonly accept: (key: string) => boolean,
    private readonly out: ConsumerOutput,
    private readonly onStop: (c: PushConsumer) => void,
  ) {
    this.noInterestTimer = setTimeout(() => {
      if (!this.hadInterest) this.stop();
    }, spec.noInterestTimeoutMs);
    if (spec.idleHeartbeatMs > 0) {
      this.heartbeat = setInterval(() => this.beat(), spec.idleHeartbeatMs);
    }
  }

  /** Initial values not delivered yet (CONSUMER.INFO's num_pending). */
  get numPending(): number {
    return this.initial.length;
  }

  get delivered(): { consumer_seq: number; stream_seq: number } {
    return { consumer_seq: this.consumerSeq, stream_seq: this.lastStreamSeq };
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** The deliver subject gained (or may have lost) a subscriber. */
  interestChanged(): void {
    if (this.stopped) return;
    if (this.out.hasInterest(this.spec.deliverSubject)) {
      if (!this.hadInterest) {
        this.hadInterest = true;
        clearTimeout(this.noInterestTimer);
        void this.pump();
      }
    } else if (this.hadInterest) {
      this.stop();
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.noInterestTimer);
    clearInterval(this.heartbeat);
    // Ends the pump's pending next() too.
    this.watch.stop();
    this.onStop(this);
  }

  private beat(): void {
    if (this.stopped || !this.hadInterest || this.initial.length > 0) return;
    if (Date.now() - this.lastSentAt < this.spec.idleHeartbeatMs) return;
    this.lastSentAt = Date.now();
    this.out.send(
      this.spec.deliverSubject,
      this.spec.deliverSubject,
      undefined,
      [
        ["Nats-Last-Consumer", String(this.consumerSeq)],
        ["Nats-Last-Stream", String(this.lastStreamSeq)],
      ],
      { code: 100, description: "Idle Heartbeat" },
      EMPTY,
    );
  }

  private async pump(): Promise<void> {
    try {
      // Each pass delivers one entry or ends: bounded by the entries the watch yields.
      while (!this.stopped) {
        await this.out.writable(this.spec.owner);
        if (this.stopped) return;
        let entry: Entry | null;
        let pending: number;
        if (this.initial.length > 0) {
          entry = this.initial.shift()!;
          pending = this.initial.length;
        } else {
          const next = await this.watch.next();
          if (next.done) break;
          entry = next.value;
          if (entry === null || !this.accept(entry.key)) continue;
          pending = entry.delta;
        }
        if (this.stopped) return;
        this.send(entry, pending);
      }
    } catch {
      // The watch ended with an error (SLOW_CONSUMER, the bucket deleted, shutdown): the
      // ordered consumer of the client sees no more heartbeats and recreates itself from
      // its last stream sequence, as it does against nats-server.
    }
    this.stop();
  }

  private send(e: Entry, pending: number): void {
    this.consumerSeq++;
    this.lastStreamSeq = e.revision;
    this.lastSentAt = Date.now();
    const ack = `$JS.ACK.${this.spec.stream}.${this.spec.name}.1.${e.revision}.${this.consumerSeq}.${nanosOf(e.created)}.${pending}`;
    const headers = entryHeaders(e);
    if (this.spec.headersOnly) headers.push(["Nats-Msg-Size", String(e.size)]);
    this.out.send(
      this.spec.deliverSubject,
      `$KV.${e.bucket}.${e.key}`,
      ack,
      headers.length > 0 ? headers : undefined,
      undefined,
      this.spec.headersOnly ? EMPTY : e.value,
    );
  }
}
