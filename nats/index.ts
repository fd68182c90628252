/**
 * The NATS port's public surface (see README.md): the server the node starts with
 * `--nats-port`, the seams it needs from the node, and the parser for its tests.
 */
export { DEFAULT_MAX_CONTROL_LINE_BYTES, NatsParser, NatsProtocolError } from "./parser.js";
export {
  ANNOUNCED_NATS_VERSION,
  NATS_DEFAULTS,
  NatsServer,
  type NatsServerOptions,
} from "./server.js";
export type { NatsAuth, NatsKvBackend, NatsLogger, NatsPrincipal, NatsWatch } from "./types.js";
