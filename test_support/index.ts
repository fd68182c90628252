/** Test support shared by every folder's tests and by bench/ (see README.md). */
export {
  clientTlsArgs,
  makeCa,
  makeCert,
  makeExpiredCert,
  type TestCert,
  wssUrl,
} from "./certs.js";
export {
  applyEdits,
  bitFlipped,
  type Edit,
  edit,
  FUZZ_RUNS,
  FUZZ_SEED,
  fuzz,
  fuzzBytes,
  mutatedBytes,
} from "./fuzz.js";
export { freePort, freePorts } from "./ports.js";
export {
  binPath,
  type CliResult,
  type CommandResult,
  collectOutput,
  exitOf,
  isAlive,
  type Output,
  removeDir,
  repoRoot,
  runCli,
  runCommand,
  type ServerProcess,
  type StartOptions,
  startCluster,
  startServer,
  type TestCluster,
  tempDir,
} from "./process.js";
export { seededRandom } from "./random.js";
export { RawClient, RssSampler, rssBytes } from "./raw_client.js";
export { waitFor } from "./wait.js";
