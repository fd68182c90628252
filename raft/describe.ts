/**
 * One canonical text form for entries, messages and readies, used by tests,
 * logs and simulator reports (etcd-io/raft util.go), e.g.
 *   1->2 MsgApp term=2 index=5 logTerm=1 entries=[6/2 7/2] commit=5
 */
import { EntryType } from "./storage.js";
import type { Entry, Message, Ready } from "./types.js";

export function describeEntry(e: Entry): string {
  const kind = e.type === EntryType.Noop ? "noop" : e.type === EntryType.ConfChange ? "conf" : "";
  return kind ? `${e.index}/${e.term}:${kind}` : `${e.index}/${e.term}`;
}

export function describeEntries(entries: readonly Entry[]): string {
  return `[${entries.map(describeEntry).join(" ")}]`;
}

export function describeMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${m.type} term=${m.term}`];
  switch (m.type) {
    case "MsgApp":
      parts.push(`index=${m.index} logTerm=${m.logTerm} entries=${describeEntries(m.entries)}`);
      parts.push(`commit=${m.commit}`);
      break;
    case "MsgAppResp":
      parts.push(`index=${m.index}`);
      if (m.reject) parts.push(`reject hint=${m.rejectHint} hintTerm=${m.logTerm}`);
      break;
    case "MsgVote":
    case "MsgPreVote":
      parts.push(`index=${m.index} logTerm=${m.logTerm}`);
      if (m.transfer) parts.push("transfer");
      break;
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      if (m.reject) parts.push("reject");
      break;
    case "MsgHeartbeat":
      parts.push(`commit=${m.commit}`);
      if (m.context) parts.push(`ctx=${m.context}`);
      break;
    case "MsgHeartbeatResp":
      if (m.context) parts.push(`ctx=${m.context}`);
      break;
    case "MsgSnap": {
      const s = m.snapshot!;
      parts.push(
        `snap=${s.meta.index}/${s.meta.term} offset=${s.offset} bytes=${s.data.byteLength}`,
      );
      if (s.done) parts.push("done");
      break;
    }
    case "MsgSnapResp":
      parts.push(`snap=${m.snapshotIndex} received=${m.snapshotOffset}`);
      break;
    case "MsgReadIndex":
      parts.push(`ctx=${m.context}`);
      break;
    case "MsgReadIndexResp":
      parts.push(`index=${m.index} ctx=${m.context}`);
      break;
    case "MsgTimeoutNow":
      break;
  }
  return parts.join(" ");
}

export function describeReady(rd: Ready): string {
  const lines: string[] = [];
  if (rd.softState) {
    const s = rd.softState;
    lines.push(`soft: ${s.role} term=${s.term} leader=${s.leaderId ?? "none"}`);
  }
  if (rd.hardState) {
    const h = rd.hardState;
    lines.push(`hard: term=${h.currentTerm} vote=${h.votedFor ?? "none"} commit=${h.commitIndex}`);
  }
  if (rd.snapshot) lines.push(`snapshot: ${rd.snapshot.meta.index}/${rd.snapshot.meta.term}`);
  if (rd.entries.length > 0) lines.push(`entries: ${describeEntries(rd.entries)}`);
  if (rd.committed.length > 0) lines.push(`committed: ${describeEntries(rd.committed)}`);
  for (const r of rd.readStates) lines.push(`read: index=${r.index} ctx=${r.context}`);
  for (const m of rd.messages) lines.push(describeMessage(m));
  return lines.join("\n");
}
