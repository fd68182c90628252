#!/usr/bin/env node
// The `streamkv` command. The project ships TypeScript sources; tsx compiles
// them on load, so a clone needs only `npm ci` before this runs.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
