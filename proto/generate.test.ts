import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { protoNames, renderGenerated } from "./generate.js";

const protoDir = dirname(fileURLToPath(import.meta.url));

describe("proto/generated", () => {
  it.each(protoNames())("%s.ts matches %s.proto (run npm run proto:gen)", (name) => {
    const current = readFileSync(join(protoDir, "generated", `${name}.ts`), "utf8");
    expect(current).toBe(renderGenerated(name));
  });
});
