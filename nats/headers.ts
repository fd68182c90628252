/**
 * NATS message headers: `NATS/1.0[ <status>[ <description>]]\r\n` then `Key: value`
 * lines, then an empty line. Names are compared case-insensitively (clients differ in
 * how they spell them); the first value of a repeated name wins, as in nats-server's
 * header lookups.
 */
import { NatsProtocolError } from "./parser.js";

export interface NatsHeaders {
  /** The status code of a status message (503, 404, 100, ...), else undefined. */
  status: number | undefined;
  description: string;
  fields: [string, string][];
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Reads a header block; throws NatsProtocolError when it is not one. */
export function parseHeaders(block: Uint8Array): NatsHeaders {
  const text = decoder.decode(block);
  const lines = text.split("\r\n");
  const first = lines[0] ?? "";
  const m = /^NATS\/1\.0(?: +(\d{3})(?: +(.*))?)?\s*$/.exec(first);
  if (!m) throw new NatsProtocolError("Protocol Error: headers must start with NATS/1.0");
  const fields: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new NatsProtocolError("Protocol Error: a header line needs a colon");
    fields.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return {
    status: m[1] === undefined ? undefined : Number(m[1]),
    description: m[2] ?? "",
    fields,
  };
}

export function headerValue(h: NatsHeaders | undefined, name: string): string | undefined {
  if (!h) return undefined;
  const lower = name.toLowerCase();
  return h.fields.find(([k]) => k.toLowerCase() === lower)?.[1];
}

/** A header block: an optional status line, then the fields. */
export function encodeHeaders(
  fields: readonly (readonly [string, string])[],
  status?: { code: number; description: string },
): Uint8Array {
  let text = "NATS/1.0";
  if (status) text += ` ${status.code}${status.description === "" ? "" : ` ${status.description}`}`;
  text += "\r\n";
  for (const [k, v] of fields) text += `${k}: ${v}\r\n`;
  text += "\r\n";
  return encoder.encode(text);
}
