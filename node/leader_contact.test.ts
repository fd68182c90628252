import { describe, expect, it } from "vitest";
import { LeaderContact } from "./leader_contact.js";

const voters = ["n1", "n2", "n3"];

describe("LeaderContact", () => {
  it("a follower is in touch while it hears from its leader, out of touch after the timeout", () => {
    const c = new LeaderContact("n1", 1000, 0);
    const view = { role: "follower", leaderId: "n2", voters };
    c.heard("n2", 100);
    expect(c.inTouch(view, 900)).toBe(true);
    expect(c.inTouch(view, 1100)).toBe(true);
    // Messages from a peer that is not the leader do not count.
    c.heard("n3", 1500);
    expect(c.inTouch(view, 1101)).toBe(false);
    expect(c.outOfTouchMs(view, 1600)).toBe(1500);
    c.heard("n2", 1700);
    expect(c.inTouch(view, 1700)).toBe(true);
  });

  it("a leader is in touch while a majority of voters (itself included) was heard", () => {
    const c = new LeaderContact("n1", 1000, 0);
    const view = { role: "leader", leaderId: "n1", voters };
    c.heard("n2", 500);
    c.heard("n3", 200);
    // The majority's time is the second newest of (now, 500, 200): 500.
    expect(c.inTouch(view, 1400)).toBe(true);
    expect(c.inTouch(view, 1501)).toBe(false);
    c.heard("n3", 1600);
    expect(c.inTouch(view, 1650)).toBe(true);
    // A lone voter is always in touch with itself.
    const alone = new LeaderContact("n1", 1000, 0);
    expect(alone.inTouch({ role: "leader", leaderId: "n1", voters: ["n1"] }, 1e9)).toBe(true);
  });

  it("a node with no leader keeps the time it last was in touch", () => {
    const c = new LeaderContact("n1", 1000, 0);
    c.heard("n2", 300);
    expect(c.inTouch({ role: "follower", leaderId: "n2", voters }, 400)).toBe(true);
    const none = { role: "candidate", leaderId: null, voters };
    expect(c.inTouch(none, 1200)).toBe(true);
    expect(c.inTouch(none, 1301)).toBe(false);
    // A node that just started has a timeout's grace.
    const fresh = new LeaderContact("n1", 1000, 5000);
    expect(fresh.inTouch(none, 5900)).toBe(true);
    expect(fresh.inTouch(none, 6001)).toBe(false);
  });

  it("forgets peers that left the configuration", () => {
    const c = new LeaderContact("n1", 1000, 0);
    c.heard("n2", 10);
    c.heard("gone", 10);
    c.forgetAllBut(["n1", "n2"]);
    expect(c.inTouch({ role: "follower", leaderId: "gone", voters }, 20)).toBe(true); // grace
    expect(c.inTouch({ role: "follower", leaderId: "gone", voters }, 1500)).toBe(false);
  });
});
