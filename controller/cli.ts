/**
 * The `houston` command line (commander): the global options and `plan` here, the other commands
 * from commands/register.ts and commands/host-config.ts, each a thin adapter onto
 * controller/commands; main() maps errors to exit codes.
 */
import { Command, CommanderError } from "commander";
import {
  ConfigError,
  ConsulPermissionError,
  ConsulUnreachableError,
  HoustonError,
  LockHeldError,
  errorText,
} from "../shared/errors.js";
import { argvGrammar, normalizeArgv } from "./argv.js";
import { NAME_RE } from "../shared/unit-name.js";
import { HOUSTON_VERSION } from "../shared/version.js";
import { loadManifestFor, makeContext, type GlobalOptions } from "./context.js";
import { EXIT, consoleOutput, liveTerminal, visible } from "./output.js";
import { planCommand } from "./commands/plan.js";
import type { DeploymentType } from "./plan/plan-deployment.js";
import type { CommandEnv } from "./commands/env.js";
import { registerCommands } from "./commands/register.js";
import { registerHostConfig } from "./commands/host-config.js";

export const VERSION = HOUSTON_VERSION;

export type { CommandEnv } from "./commands/env.js";

export function buildProgram(): Command {
  const program = new Command("houston")
    .description("Deploy systemd-unit stacks to CoreOS-style hosts with Consul as the control plane")
    .version(VERSION)
    .option("-c, --config <dir>", "Houston config directory", ".")
    .option("-e, --environment <env>", "environment from manifest.yaml")
    .option(
      "--consul <addr>",
      "Consul HTTP address (default: $CONSUL_HTTP_ADDR, then the manifest, then http://127.0.0.1:8500)",
    )
    .option("--token <token>", "Consul ACL token (default: $CONSUL_HTTP_TOKEN)")
    .option("--insecure-token", "allow sending the token over plain http to a non-loopback address")
    .option("--ca-file <file>", "CA certificate for Consul's TLS (default: $CONSUL_CACERT)")
    .option("--client-cert <file>", "client certificate for Consul's TLS (default: $CONSUL_CLIENT_CERT)")
    .option("--client-key <file>", "client key for Consul's TLS (default: $CONSUL_CLIENT_KEY)")
    .option("--tls-server-name <name>", "name on Consul's certificate (default: $CONSUL_TLS_SERVER_NAME)")
    .option("--max-archive-size <MiB>", "largest file archive a deployment may carry", "64")
    .option("--prefix <prefix>", "KV prefix", "houston/")
    .option("--signing-key <file>", "sign every spec written with this ed25519 key (default: $HOUSTON_SIGNING_KEY)")
    .option(
      "--cluster <name>",
      "cluster name bound into signatures, as the agents' --cluster (default: $HOUSTON_CLUSTER)",
    )
    .option("-v, --verbose", "debug output", false)
    .option("--json", "machine-readable output on stdout", false)
    .showHelpAfterError()
    .exitOverride();

  const env: CommandEnv = {
    globals: (cmd) => cmd.optsWithGlobals<GlobalOptions>(),
    output: (cmd) => consoleOutput({ verbose: env.globals(cmd).verbose }),
    rolloutOutput: (cmd) => {
      const g = env.globals(cmd);
      return consoleOutput({
        verbose: g.verbose,
        events: g.json,
        live: !g.json && liveTerminal(process.stderr, process.env),
      });
    },
    manifest: (cmd) => loadManifestFor(env.globals(cmd)),
    request(cmd, type, name, version, opts) {
      const g = env.globals(cmd);
      if (!g.environment) throw new ConfigError("command line", "-e/--environment is required");
      if (type !== "global" && !NAME_RE.test(name))
        throw new ConfigError(
          "command line",
          `${JSON.stringify(name)} is not a stack name (letters, digits, '.', '_', '-')`,
        );
      return {
        environment: g.environment,
        type,
        name: type === "global" ? "global" : name,
        version,
        group: opts.group ?? null,
        dependencies: opts.dependencies !== false,
      };
    },
  };

  const plan = program
    .command("plan")
    .description("render a deployment and show what it would change (no changes made)");
  const planAction =
    (type: DeploymentType) =>
    async (...args: unknown[]) => {
      const cmd = args.at(-1) as Command;
      const opts = cmd.opts<{ group?: string; dependencies?: boolean; full?: boolean }>();
      const [name, version] = args.filter((a): a is string => typeof a === "string");
      const req = env.request(cmd, type, name ?? "global", version ?? null, opts);
      const manifest = env.manifest(cmd);
      const g = env.globals(cmd);
      await planCommand(makeContext(g, manifest), manifest, req, env.output(cmd), g.json, opts.full === true);
    };
  const planOpts = (c: Command): Command =>
    c
      .option("-g, --group <group>", "deployment group (blue/green)")
      .option("--no-dependencies", "do not chain units with Requires=/After=")
      .option("--scheduler <name>", "plan for this scheduler (agents or fleet) instead of the environment's")
      .option("--full", "every unit's whole text, not only what changes against the live stack");
  planOpts(
    plan.command("service").argument("<name>").argument("<version>").description("plan a service deployment"),
  ).action(planAction("service"));
  planOpts(plan.command("standalone").argument("<name>").description("plan a standalone stack deployment")).action(
    planAction("standalone"),
  );
  planOpts(plan.command("global").description("plan the global units")).action(planAction("global"));

  registerCommands(program, env);
  registerHostConfig(program, env);
  return program;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof LockHeldError) return EXIT.lockHeld;
  if (err instanceof ConsulPermissionError) return EXIT.permissionDenied;
  if (err instanceof ConsulUnreachableError) return EXIT.consulUnreachable;
  if (err instanceof ConfigError) return EXIT.usage;
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  return EXIT.failed;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(normalizeArgv(argv, argvGrammar(program)), { from: "user" });
    return process.exitCode === undefined ? EXIT.ok : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) return exitCodeFor(err);
    const text = err instanceof HoustonError ? err.message : errorText(err);
    process.stderr.write(`${"ERROR".padEnd(8)} ${visible(text)}\n`);
    if (!(err instanceof HoustonError) && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return exitCodeFor(err);
  }
}
