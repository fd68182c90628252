/** Free TCP ports on loopback, for servers whose port must be known before they start. */
import { createServer } from "node:net";

/** A TCP port free on 127.0.0.1 right now (a tiny race remains until a server binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `n` distinct free loopback ports (each probed by `probe`, by default `freePort`). */
export async function freePorts(
  n: number,
  probe: () => Promise<number> = freePort,
): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; i < n * 20 && ports.size < n; i++) ports.add(await probe());
  if (ports.size < n) throw new Error(`could not find ${n} distinct free ports`);
  return [...ports];
}
