/**
 * The linearizability checker and its models: the public surface of
 * cluster-tests/lincheck/. See cluster-tests/README.md for how to use it.
 */
export {
  type AppendInput,
  type AppendOutput,
  type AppendValue,
  appendLogDigest,
  appendLogModel,
  type LogState,
} from "./append_log_model.js";
export { checkLinearizable, WHOLE_HISTORY } from "./checker.js";
export { HistoryRecorder, type OpHandle } from "./history.js";
export {
  describeKvOp,
  type KvBucketState,
  type KvCasCode,
  type KvInput,
  type KvKeyState,
  type KvOutput,
  type KvPerKeyState,
  kvModel,
  kvPerKeyModel,
} from "./kv_model.js";
export { checkKvRevisions, type KvRevisionResult } from "./kv_revisions.js";
export {
  type CommittedKvEntry,
  historyEndTime,
  patchAppendHistory,
  patchKvHistory,
} from "./patch.js";
export {
  type RegisterInput,
  type RegisterOutput,
  type RegisterValue,
  registerModel,
} from "./register_model.js";
export type { CheckOptions, CheckResult, CheckStats, Model, Op } from "./types.js";
