import { describe, expect, it } from "vitest";
import { isValidNodeId, parsePeerAddress } from "./peer_address.js";

describe("parsePeerAddress", () => {
  it.each([
    ["127.0.0.1:7421", "127.0.0.1", 7421],
    ["node-1.example.com:1", "node-1.example.com", 1],
    ["h:65535", "h", 65535],
    ["[::1]:7421", "[::1]", 7421],
    ["[fe80::1:2]:80", "[fe80::1:2]", 80],
    ["[::ffff:10.0.0.1]:7421", "[::ffff:10.0.0.1]", 7421],
  ])("%s is host %s, port %d", (text, host, port) => {
    expect(parsePeerAddress(text)).toEqual({ host, port });
  });

  it.each([
    ["", /not host:port/],
    ["h1", /not host:port/],
    [":7421", /not host:port/],
    ["h:", /not host:port/],
    ["h:port", /not host:port/],
    ["h:-1", /not host:port/],
    ["::1:7421", /not host:port/], // IPv6 needs brackets
    ["[::1]", /not host:port/],
    ["[::1:7421", /not host:port/],
    ["[example.com]:7421", /not host:port/],
    ["a b:1", /not host:port/],
    ["a=b:1", /not host:port/],
    [" h:1", /not host:port/],
    ["h:0", /real port/],
    ["h:65536", /above 65535/],
    ["h:99999999", /above 65535/],
  ])("%j is refused", (text, why) => {
    const r = parsePeerAddress(text);
    expect("error" in r && r.error).toMatch(why);
  });

  it("round-trips through host:port", () => {
    for (const text of ["10.0.0.2:7421", "[::1]:7421"]) {
      const r = parsePeerAddress(text) as { host: string; port: number };
      expect(`${r.host}:${r.port}`).toBe(text);
    }
  });
});

describe("isValidNodeId", () => {
  it("takes 1..64 of [a-zA-Z0-9_.-]", () => {
    expect(["n1", "a.b-c_d", "x".repeat(64)].every(isValidNodeId)).toBe(true);
    expect(["", "x".repeat(65), "n 1", "n=1", "n:1"].some(isValidNodeId)).toBe(false);
  });
});
