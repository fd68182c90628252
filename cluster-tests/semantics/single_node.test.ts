/** SEMANTICS.md through the client against one real `streamkv server` process. */
import { afterAll, beforeAll } from "vitest";
import { removeDir, type ServerProcess, startServer } from "../../test_support/index.js";
import { semanticsSuite } from "./suite.js";

let server: ServerProcess | undefined;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  if (!server) return;
  await server.stop();
  removeDir(server.dataDir);
});

semanticsSuite("SEMANTICS.md on a single node", async () => ({ servers: [server!.url] }));
