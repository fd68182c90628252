/**
 * A node's `/metrics` as the tests read it: Prometheus text parsed into series, each
 * keyed by its name and labels, so a test asks for a value by name and a label match
 * and compares two scrapes.
 */
import type { LocalCluster } from "./cluster.js";

export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition format (prom-client writes no timestamps). */
export function parseMetrics(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a metrics line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!;
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export class Scrape {
  constructor(readonly series: Series[]) {}

  /** The sum over the series of `name` whose labels include `match` (0 if none). */
  sum(name: string, match: Record<string, string> = {}): number {
    return this.matching(name, match).reduce((a, s) => a + s.value, 0);
  }

  matching(name: string, match: Record<string, string> = {}): Series[] {
    return this.series.filter(
      (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
    );
  }

  has(name: string): boolean {
    return this.series.some((s) => s.name === name);
  }
}

/** Node `i`'s metrics now; throws when it does not answer. */
export async function scrape(c: LocalCluster, i: number): Promise<Scrape> {
  const r = await c.http(i, "/metrics", 5000);
  if (r?.status !== 200) throw new Error(`node ${i} /metrics: ${r?.status ?? "no answer"}`);
  return new Scrape(parseMetrics(r.body));
}
