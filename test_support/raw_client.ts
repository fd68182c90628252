/**
 * What the memory tests and the attack bench use to misbehave on purpose: a raw
 * protocol client that can stop reading, and RSS sampling of a server process.
 */
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { decodeServerFrame, encodeClientFrame, type WireObject } from "../proto/index.js";
import { waitFor } from "./wait.js";

/** A process's resident set size now, bytes (/proc/<pid>/status VmRSS; Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Samples a process's RSS every 20 ms until stopped; `peak` is the highest seen. */
export class RssSampler {
  peak = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  constructor(private readonly pid: number) {
    this.peak = rssBytes(pid);
    this.timer = setInterval(() => {
      try {
        this.peak = Math.max(this.peak, rssBytes(this.pid));
      } catch {}
    }, 20);
  }
  stop(): number {
    clearInterval(this.timer);
    try {
      this.peak = Math.max(this.peak, rssBytes(this.pid));
    } catch {}
    return this.peak;
  }
}

/** A raw protocol client that can stop reading (its TCP socket paused). */
export class RawClient {
  readonly frames: WireObject[] = [];
  closed = false;
  readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(url: string, localAddress?: string) {
    this.ws = new WebSocket(url, localAddress === undefined ? {} : { localAddress });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
    this.ws.on("error", () => {});
    this.ws.on("close", () => {
      this.closed = true;
    });
    this.ws.on("message", (data) => this.frames.push(decodeServerFrame(data as Buffer)));
  }

  send(frame: WireObject): void {
    this.ws.send(encodeClientFrame(frame));
  }

  /** Sends raw bytes as one binary frame (garbage, for the decoders). */
  sendBytes(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  async hello(token?: string): Promise<void> {
    await this.opened;
    this.send({ id: 1, hello: { protocol_version: 1, ...(token ? { token } : {}) } });
    await waitFor(() => this.frames.some((f) => f.id === 1), 5000, "hello answer");
  }

  /** Stops reading: the server's frames pile up in its own buffers. */
  pauseReading(): void {
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  kill(): void {
    this.ws.terminate();
  }
}
