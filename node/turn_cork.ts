/**
 * `ws.send` with this turn's other frames on the same socket in one write
 * (proto/turn_cork.ts, which the SDK uses too).
 */
import type { Socket } from "node:net";
import type WebSocket from "ws";
import { atEndOfTurn, socketOf as corkableOf, holdWritesForTurn } from "../proto/index.js";

export { holdWritesForTurn };

/** The net.Socket under a `ws` WebSocket (proto's socketOf, typed for the node). */
export function socketOf(ws: WebSocket): Socket | undefined {
  return corkableOf(ws) as Socket | undefined;
}

/** `ws.send`, with this turn's other frames on the same socket in one write. */
export function sendInTurn(ws: WebSocket, data: Uint8Array, cb?: (err?: Error) => void): void {
  holdWritesForTurn(corkableOf(ws));
  ws.send(data, { binary: true }, cb);
}

/** Runs `run` just before this turn's frames on `ws` leave (proto's atEndOfTurn). */
export function beforeTurnWrite(ws: WebSocket, run: () => void): void {
  atEndOfTurn(corkableOf(ws), run);
}
