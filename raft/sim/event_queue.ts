/**
 * Virtual time for the simulator: one priority queue of events ordered by
 * (timeMs, sequence), so events at the same instant run in the order they
 * were scheduled and a run is fully determined by its seed.
 */
export interface SimEvent {
  timeMs: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private readonly heap: SimEvent[] = [];
  private seq = 0;
  nowMs = 0;

  at(timeMs: number, run: () => void): void {
    const ev: SimEvent = { timeMs: Math.max(timeMs, this.nowMs), seq: this.seq++, run };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  after(delayMs: number, run: () => void): void {
    this.at(this.nowMs + delayMs, run);
  }

  /** Removes and returns the next event, advancing the clock to it. */
  pop(): SimEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    this.nowMs = top.timeMs;
    return top;
  }

  size(): number {
    return this.heap.length;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}
