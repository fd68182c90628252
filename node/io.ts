/**
 * Where a process writes and what it reads: the server (node/main.ts) and the CLI
 * (cli/, which imports it from here) take it, so tests pass their own streams.
 */
export interface Io {
  stdout: { write(chunk: string | Uint8Array): unknown };
  stderr: { write(chunk: string | Uint8Array): unknown };
  stdin: AsyncIterable<Uint8Array | string> & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  /** Starts listening for Ctrl-C (SIGINT/SIGTERM); resolves when it comes (`kv watch`). */
  interrupted: () => Promise<void>;
}
