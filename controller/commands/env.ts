/**
 * What each command adapter gets from the CLI (commander): the global options resolved, the
 * output, the manifest, a deployment request. Kept apart so commands do not import the CLI.
 */
import type { Command } from "commander";
import type { Manifest } from "../config/manifest.js";
import type { GlobalOptions } from "../context.js";
import type { Output } from "../output.js";
import type { DeploymentRequest, DeploymentType } from "../plan/plan-deployment.js";

export interface CommandEnv {
  globals(cmd: Command): GlobalOptions;
  output(cmd: Command): Output;
  /** deploy, remove, rollback: live progress on a terminal, NDJSON events with --json */
  rolloutOutput(cmd: Command): Output;
  manifest(cmd: Command): Manifest;
  request(
    cmd: Command,
    type: DeploymentType,
    name: string,
    version: string | null,
    opts: { group?: string; dependencies?: boolean },
  ): DeploymentRequest;
}
