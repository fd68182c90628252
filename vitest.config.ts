import { defineConfig } from "vitest/config";

// `npm test` runs every test that needs only Node: unit tests beside the code,
// and the multi-process tests in cluster-tests/ that use loopback. The container
// suite (real Docker) has its own config and script.
export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "dist/**", "cluster-tests/containers/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    reporters: ["default"],
  },
});
