/**
 * Registers the deploy-side and inspection commands on the CLI: service / standalone / global
 * (the seed's invocation and flags), remove, rollback, status, history, nodes; and acl, keygen,
 * adopt. (plan is declared in controller/cli.ts, host-config in commands/host-config.ts.)
 */
import { Option, type Command } from "commander";
import { ConfigError } from "../../shared/errors.js";
import { GROUP_RE, NAME_RE } from "../../shared/unit-name.js";
import type { CommandEnv } from "./env.js";
import { makeContext } from "../context.js";
import { EXIT } from "../output.js";
import type { DeploymentType } from "../plan/plan-deployment.js";
import { stackOf } from "../plan/plan-deployment.js";
import type { RolloutOptions } from "../rollout/rollout.js";
import { perUnitMs } from "../rollout/rollout-plan.js";
import { DEFAULT_KEEP_GENERATIONS, breakLockIfAsked, deployCommand, removeCommand, rollbackCommand } from "./deploy.js";
import { historyCommand } from "./history.js";
import { nodesCommand, statusCommand } from "./inspect.js";
import { adoptCommand } from "./adopt.js";
import { confirmRemove } from "./confirm-remove.js";
import { writeSigningKeys } from "./keygen.js";
import { aclBootstrapCommand, aclPoliciesCommand, declaredStacks } from "./acl.js";

const STACK_FLAG = "--stack <name>";
const STACK_HELP = "a stack whose services (NAME, NAME-*) agents may register, besides the config's (repeatable)";
const repeat = (v: string, prev: string[]): string[] => [...prev, v];
import { KvLayout } from "../../shared/kv-layout.js";

interface DeployFlags {
  group?: string;
  delay: string;
  maxTries: string;
  dependencies: boolean;
  removal: boolean;
  remove?: boolean;
  skipConsul?: boolean;
  timeout: string;
  maxParallel?: string;
  canary: string;
  minHealthy?: string;
  forceUnlock?: boolean;
  keepGenerations: string;
}

/** -g as a deploy takes it (the planner checks it too): a removal must not ask Consul for another */
function groupFlag(group: string | null): string | null {
  if (group !== null && !GROUP_RE.test(group))
    throw new ConfigError("command line", `invalid group ${JSON.stringify(group)} (lowercase letters, digits, '-')`);
  return group;
}

function positive(name: string, value: string, allowZero = false): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < (allowZero ? 0 : 1))
    throw new ConfigError(
      "command line",
      `${name} must be a ${allowZero ? "non-negative" : "positive"} whole number, got ${JSON.stringify(value)}`,
    );
  return n;
}

/** The longest wait a timer holds (2^31-1 ms, about 24.8 days); longer ones would fire at once. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

function seconds(name: string, value: string, allowZero = false): number {
  const n = positive(name, value, allowZero);
  if (n > MAX_TIMER_SECONDS)
    throw new ConfigError(
      "command line",
      `${name} ${n} is longer than a timer holds (at most ${MAX_TIMER_SECONDS} s, about 24 days)`,
    );
  return n;
}

function rolloutOptions(f: DeployFlags): RolloutOptions {
  const delaySeconds = seconds("--delay", f.delay);
  const maxTries = positive("--max-tries", f.maxTries);
  const perUnitSeconds = perUnitMs({ delaySeconds, maxTries }) / 1000;
  if (perUnitSeconds > MAX_TIMER_SECONDS)
    throw new ConfigError(
      "command line",
      `--delay × --max-tries (${perUnitSeconds} s) is longer than a timer holds (at most ${MAX_TIMER_SECONDS} s)`,
    );
  return {
    delaySeconds,
    maxTries,
    timeoutSeconds: seconds("--timeout", f.timeout),
    skipConsul: f.skipConsul === true,
    noRemoval: f.removal === false,
    maxParallel: f.maxParallel === undefined ? null : positive("--max-parallel", f.maxParallel),
    canary: positive("--canary", f.canary, true),
    minHealthySeconds: f.minHealthy === undefined ? null : seconds("--min-healthy", f.minHealthy, true),
    keepGenerations: positive("--keep-generations", f.keepGenerations),
  };
}

function stackArg(stack: string): string {
  if (!NAME_RE.test(stack))
    throw new ConfigError(
      "command line",
      `STACK ${JSON.stringify(stack)} is not a stack name (letters, digits, '.', '_', '-'; no '/')`,
    );
  return stack;
}

/** Flags every rollout takes (deploy and rollback). */
function rolloutFlags(c: Command): Command {
  return c
    .option("-d, --delay <seconds>", "with --max-tries: the longest wait for one unit is delay × max-tries", "5")
    .option("-m, --max-tries <n>", "see --delay", "15")
    .option("-n, --no-removal", "on failure, leave the new units in place instead of restoring the previous generation")
    .option("-s, --skip-consul", "do not confirm the service with Consul's health API")
    .option("--timeout <seconds>", "upper bound for the whole rollout", "600")
    .addOption(new Option("--max-parallel <n>", "hosts updated at a time"))
    .option("--canary <n>", "deploy to n hosts and confirm them before the rest", "0")
    .option(
      "--min-healthy <seconds>",
      "watch every unit this long after it is active, overriding each unit's window (default: --delay for units that prove no readiness, 0 for Type=notify/oneshot/forking or a passing HTTP check; see `plan`); a unit that fails or restarts meanwhile fails the rollout",
    )
    .option("--force-unlock", "break the stack's deploy lock (says whose it was) first")
    .option(
      "--trust-kv-as-is",
      "with a signing key: take the live spec and history as KV holds them though they do not verify against it (warns naming each key)",
    )
    .option(
      "--keep-generations <n>",
      "keep the archives of this many recent successful deployments (rollback targets)",
      String(DEFAULT_KEEP_GENERATIONS),
    );
}

function deployOptions(c: Command): Command {
  return rolloutFlags(c)
    .option("-g, --group <group>", "deployment group (blue/green): units named <name>:<group>@<version>")
    .option("--no-dependencies", "do not chain units with Requires=/After=")
    .option("--remove", "remove this stack (or group) instead of deploying it");
}

export function registerCommands(program: Command, env: CommandEnv): void {
  const setExit = (ok: boolean): void => {
    process.exitCode = ok ? EXIT.ok : EXIT.failed;
  };
  const deploy =
    (type: DeploymentType) =>
    async (...args: unknown[]) => {
      const cmd = args.at(-1) as Command;
      const flags = cmd.opts<DeployFlags>();
      const [name, version] = args.filter((a): a is string => typeof a === "string");
      const req = env.request(cmd, type, name ?? "global", version ?? null, {
        group: flags.group,
        dependencies: flags.dependencies,
      });
      const manifest = env.manifest(cmd);
      const ctx = makeContext(env.globals(cmd), manifest);
      const out = env.rolloutOutput(cmd);
      // every flag is checked before the lock is broken or Consul is asked
      if (flags.remove) {
        const group = groupFlag(req.group);
        const keep = positive("--keep-generations", flags.keepGenerations);
        await breakLockIfAsked(ctx, stackOf(req), flags.forceUnlock === true, out);
        return setExit(await removeCommand(ctx, stackOf(req), group, req.environment, out, keep));
      }
      const opts = rolloutOptions(flags);
      await breakLockIfAsked(ctx, stackOf(req), flags.forceUnlock === true, out);
      setExit(await deployCommand(ctx, manifest, req, opts, out));
    };
  deployOptions(
    program
      .command("service")
      .argument("<name>")
      .argument("<version>")
      .description("deploy a service and its dependencies"),
  ).action(deploy("service"));
  deployOptions(program.command("standalone").argument("<name>").description("deploy a standalone stack")).action(
    deploy("standalone"),
  );
  deployOptions(program.command("global").description("deploy the global units")).action(deploy("global"));

  /** remove and rollback: a checked stack name, the context, rollout output, the lock broken if asked */
  const stackCommand = async (stack: string, cmd: Command, forceUnlock: boolean) => {
    stackArg(stack);
    const g = env.globals(cmd);
    const ctx = makeContext(g, g.environment ? env.manifest(cmd) : undefined);
    const out = env.rolloutOutput(cmd);
    await breakLockIfAsked(ctx, stack, forceUnlock, out);
    return { ctx, g, out };
  };

  program
    .command("remove")
    .argument("<stack>")
    .description("remove a stack's units and archives (with -g: only that group)")
    .option("-g, --group <group>", "remove only this group")
    .option("--force-unlock", "break the stack's deploy lock first")
    .option(
      "--trust-kv-as-is",
      "with a signing key: take the live spec as KV holds it though it does not verify against it (warns naming the key)",
    )
    .option(
      "--keep-generations <n>",
      "keep the archives of this many recent successful deployments",
      String(DEFAULT_KEEP_GENERATIONS),
    )
    .option("-y, --yes", "do not ask (on a terminal, remove asks first, naming the units and hosts that stop)")
    .action(
      async (
        stack: string,
        flags: { group?: string; forceUnlock?: boolean; keepGenerations: string; yes?: boolean },
        cmd: Command,
      ) => {
        const group = groupFlag(flags.group ?? null);
        const keep = positive("--keep-generations", flags.keepGenerations);
        const { ctx, g, out } = await stackCommand(stack, cmd, false);
        const terminal = process.stdin.isTTY === true && process.stderr.isTTY === true;
        if (!(await confirmRemove(ctx, stack, group, flags.yes === true, terminal, out))) {
          out.info(`Not removed: ${stack} keeps running`);
          return setExit(false);
        }
        await breakLockIfAsked(ctx, stack, flags.forceUnlock === true, out);
        setExit(await removeCommand(ctx, stack, group, g.environment ?? "", out, keep));
      },
    );

  rolloutFlags(
    program
      .command("rollback")
      .argument("<stack>")
      .argument("[generation]")
      .description("redeploy an earlier successful generation (default: the one before the last success)"),
  ).action(async (stack: string, generation: string | undefined, flags: DeployFlags, cmd: Command) => {
    // checked before --force-unlock breaks the lock
    const target = generation === undefined ? null : positive("GENERATION", generation);
    const opts = rolloutOptions({ ...flags, dependencies: true });
    const { ctx, out } = await stackCommand(stack, cmd, flags.forceUnlock === true);
    setExit(await rollbackCommand(ctx, stack, target, opts, out));
  });

  const inspectCtx = (cmd: Command) => {
    const g = env.globals(cmd);
    return { ctx: makeContext(g, g.environment ? env.manifest(cmd) : undefined), json: g.json, out: env.output(cmd) };
  };
  program
    .command("status")
    .argument("[stack]")
    .description("per host and unit: state, version, generation, age (exit 1 unless all active)")
    .action(async (stack: string | undefined, _f: unknown, cmd: Command) => {
      if (stack !== undefined) stackArg(stack);
      const { ctx, json, out } = inspectCtx(cmd);
      setExit(await statusCommand(ctx, stack, json, out));
    });
  program
    .command("history")
    .argument("[stack]")
    .description("deployments of a stack with result and duration (without one: every stack's last deployments)")
    .action(async (stack: string | undefined, _f: unknown, cmd: Command) => {
      if (stack !== undefined) stackArg(stack);
      const { ctx, json, out } = inspectCtx(cmd);
      await historyCommand(ctx, stack, json, out);
    });
  const acl = program.command("acl").description("least-privilege Consul ACL policies and tokens for Houston");
  acl
    .command("policies")
    .description("print the controller, operator and per-node agent policies (HCL and JSON), or write them as files")
    .option(
      "--node <name>",
      "an agent's node (repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(STACK_FLAG, STACK_HELP, repeat, [] as string[])
    .option("--out <dir>", "write NAME.hcl and NAME.json per policy into this directory")
    .action((flags: { node: string[]; stack: string[]; out?: string }, cmd: Command) => {
      const g = env.globals(cmd);
      const stacks = [...declaredStacks(g.config), ...flags.stack];
      aclPoliciesCommand(new KvLayout(g.prefix), flags.node, stacks, g.json, flags.out, env.output(cmd));
    });
  acl
    .command("bootstrap-tokens")
    .description(
      "create what is missing in Consul: the controller and operator tokens, and per --node the Houston agent's and the Consul client agent's token (needs a management token)",
    )
    .option(
      "--node <name>",
      "an agent's node (repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(STACK_FLAG, STACK_HELP, repeat, [] as string[])
    .option("--datacenter <dc>", "the node identities' datacenter (default: the Consul agent's)")
    .action(async (flags: { node: string[]; stack: string[]; datacenter?: string }, cmd: Command) => {
      const { ctx, json, out } = inspectCtx(cmd);
      const stacks = [...declaredStacks(env.globals(cmd).config), ...flags.stack];
      await aclBootstrapCommand(ctx, flags.node, stacks, flags.datacenter, json, out);
    });

  program
    .command("keygen")
    .description("write an ed25519 key pair for signing specs (PREFIX.key, PREFIX.pub)")
    .option("--out <prefix>", "path prefix of the two files", "houston-signing")
    .action((flags: { out: string }, cmd: Command) => {
      const { keyId, files } = writeSigningKeys(flags.out);
      env
        .output(cmd)
        .info(
          `Wrote ${files.join(" and ")} (key ${keyId}). Sign with --signing-key ${files[0]}; give agents --trust ${files[1]}.`,
        );
    });
  program
    .command("adopt")
    .description(
      "take over the original Houston's fleet units of this config's stacks, so the next deploy replaces them (dry run unless --yes)",
    )
    .option("--yes", "adopt them (default: only say what would be adopted)")
    .action(async (flags: { yes?: boolean }, cmd: Command) => {
      const g = env.globals(cmd);
      if (!g.environment) throw new ConfigError("command line", "-e/--environment is required");
      const manifest = env.manifest(cmd);
      await adoptCommand(
        makeContext(g, manifest),
        manifest,
        g.environment,
        flags.yes === true,
        g.json,
        env.output(cmd),
      );
    });
  program
    .command("nodes")
    .description("hosts with agents: metadata and agent health; with a fleet: endpoint, its machines beside them")
    .action(async (_f: unknown, cmd: Command) => {
      const { ctx, json, out } = inspectCtx(cmd);
      await nodesCommand(ctx, json, out);
    });
}
