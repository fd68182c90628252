/**
 * `--metrics-listen`: `/metrics` and `/v1/status` on their own address, without a
 * token, for a scraper that cannot send one. Bind it where only the scraper reaches
 * (loopback, or a monitoring network); the client port then does not serve them.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type ClientServerOptions, serveOps } from "./client_server.js";

export class MetricsServer {
  private readonly http: Server;

  constructor(
    private readonly opts: Pick<ClientServerOptions, "service" | "metrics" | "log">,
    connections: () => number,
  ) {
    this.http = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") {
        res
          .writeHead(405, { "content-type": "text/plain", allow: "GET" })
          .end("method not allowed\n");
        return;
      }
      if (path !== "/metrics" && path !== "/v1/status") {
        res
          .writeHead(404, { "content-type": "text/plain" })
          .end("not found: /metrics, /v1/status\n");
        return;
      }
      serveOps(path, res, this.opts, connections()).catch((err) => {
        this.opts.log.error("metrics handler failed", { url: req.url, error: String(err) });
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end("internal error\n");
      });
    });
    // A scraper needs a few connections; a stranger gets no more.
    this.http.maxConnections = 64;
    this.http.headersTimeout = 10_000;
    this.http.requestTimeout = 30_000;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(port, host, () => {
        this.http.off("error", reject);
        resolve((this.http.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }
}
