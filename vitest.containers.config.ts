import { defineConfig } from "vitest/config";

// `npm run test:containers` (cluster-tests/containers/run.ts): the suite that needs a
// Docker engine and the streamkv:local image. One file at a time: each starts its own
// three containers, and the machine has two cores.
export default defineConfig({
  test: {
    include: ["cluster-tests/containers/**/*.test.ts"],
    testTimeout: 150_000,
    hookTimeout: 60_000,
    pool: "forks",
    fileParallelism: false,
    reporters: ["default"],
    env: { TESTCONTAINERS_RYUK_DISABLED: "true" },
  },
});
