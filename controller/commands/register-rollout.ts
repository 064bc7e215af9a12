/**
 * Deploy-side commands. Until the rollout lands they say clearly that they cannot run yet.
 */
import type { Command } from "commander";
import { HoustonError } from "../../shared/errors.js";
import type { CommandEnv } from "../cli.js";

export function registerRolloutCommands(program: Command, _env: CommandEnv): void {
  const notYet = (what: string) => () => {
    throw new HoustonError(`${what}: deploying needs the Houston agent and rollout, which this build does not have yet; use 'houston plan'`);
  };
  program.command("service").argument("<name>").argument("<version>").description("deploy a service and its dependencies").action(notYet("service"));
  program.command("standalone").argument("<name>").description("deploy a standalone stack").action(notYet("standalone"));
  program.command("global").description("deploy the global units").action(notYet("global"));
}
