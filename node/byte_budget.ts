/**
 * Outbound bytes of the client port, counted so memory stays bounded: each connection
 * holds its answers, watch entries and pages (encoded and handed to ws, not yet flushed
 * to the kernel) plus what its requests in flight may still answer; the node adds up
 * every connection's share against one node-wide limit.
 */
import { assert } from "../proto/index.js";

export class ByteBudget {
  private usedBytes = 0;

  constructor(readonly limitBytes: number) {
    assert(Number.isSafeInteger(limitBytes) && limitBytes >= 1, "byte budget limit");
  }

  get used(): number {
    return this.usedBytes;
  }

  /** True once the bytes held reach the limit: new requests are refused OVERLOADED. */
  get exhausted(): boolean {
    return this.usedBytes >= this.limitBytes;
  }

  add(bytes: number): void {
    this.usedBytes += bytes;
  }

  release(bytes: number): void {
    this.usedBytes -= bytes;
    assert(this.usedBytes >= 0, "byte budget released more than it held");
  }
}
