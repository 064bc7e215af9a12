/** An Output that says nothing: for tests of commands and rollout steps that only look at results. */
import type { Output } from "../../controller/output.js";

export const quiet: Output = {
  log: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  print: () => undefined,
  progress: () => undefined,
};
