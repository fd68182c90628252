/**
 * A logger whose warnings cannot be turned into a flood: a stranger who opens sockets,
 * sends bad frames or wrong tokens in a loop gets each kind of refusal logged at most
 * `burst` times per `windowMs`; the rest are counted, and the next line of that kind
 * after the window says how many were left out (`suppressed`). Kinds are the message
 * text (fields such as the remote address vary and are not part of the key), so one
 * noisy kind never hides another. Debug, info and error lines pass unchanged.
 */
import type { Clock } from "./clock.js";
import type { Logger } from "./log.js";

export interface RateLimitOptions {
  /** Lines of one kind per window (default 10). */
  burst?: number;
  /** The window, ms (default 10 s). */
  windowMs?: number;
  /** Kinds tracked at once; beyond it the oldest window is forgotten (default 256). */
  maxKinds?: number;
}

interface Window {
  logged: number;
  suppressed: number;
}

export function rateLimitedLogger(log: Logger, clock: Clock, opts: RateLimitOptions = {}): Logger {
  const burst = opts.burst ?? 10;
  const windowMs = opts.windowMs ?? 10_000;
  const maxKinds = opts.maxKinds ?? 256;
  // One window per kind, opened by its first line; at its end a summary line says how
  // many were left out, and the next line of that kind opens a new window.
  const windows = new Map<string, Window>();
  const warn = (msg: string, fields?: Record<string, unknown>) => {
    const w = windows.get(msg);
    if (w === undefined) {
      // Messages are constants, so this bound is never reached in practice; if it were,
      // lines of the extra kinds pass unlimited rather than being lost.
      if (windows.size < maxKinds) {
        const opened: Window = { logged: 0, suppressed: 0 };
        windows.set(msg, opened);
        clock.after(windowMs, () => {
          windows.delete(msg);
          if (opened.suppressed > 0) {
            log.warn(msg, {
              suppressed: opened.suppressed,
              windowMs,
              note: "similar lines left out",
            });
          }
        });
        opened.logged++;
      }
      log.warn(msg, fields);
      return;
    }
    if (w.logged < burst) {
      w.logged++;
      log.warn(msg, fields);
    } else {
      w.suppressed++;
    }
  };
  return {
    debug: (m, f) => log.debug(m, f),
    info: (m, f) => log.info(m, f),
    warn,
    error: (m, f) => log.error(m, f),
  };
}
