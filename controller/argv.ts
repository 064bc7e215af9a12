/**
 * The seed's command lines, normalised for commander (pure):
 *  - deploy flags may come before the command (`houston -e test -g blue service web 2`): they are
 *    moved after it;
 *  - the seed's bare form `houston -c config -e ENV NAME VERSION` means `service NAME VERSION`.
 * Which words are commands and which flags take a value is read from the commander program
 * (argvGrammar): the options are declared once, in controller/cli.ts and commands/register.ts.
 */
import type { Command, Option } from "commander";

export interface ArgvGrammar {
  /** command names (and commander's help command) */
  commands: ReadonlySet<string>;
  /** program-level options that take a value (they stay where they are) */
  globalWithValue: ReadonlySet<string>;
  /** a deployment's options (those of `service`) that take a value, and those that do not */
  deployWithValue: ReadonlySet<string>;
  deployFlags: ReadonlySet<string>;
}

function names(options: readonly Option[], withValue: boolean): Set<string> {
  return new Set(
    options
      .filter((o) => (o.required || o.optional) === withValue)
      .flatMap((o) => [o.short, o.long].filter((n): n is string => n !== undefined)),
  );
}

/** The grammar of a commander program: its commands, its options, and those of its `service` command. */
export function argvGrammar(program: Command): ArgvGrammar {
  const commands = program.createHelp().visibleCommands(program);
  const deploy = program.commands.find((c) => c.name() === "service")?.options ?? [];
  return {
    commands: new Set(commands.flatMap((c) => [c.name(), ...c.aliases()])),
    globalWithValue: names(program.options, true),
    deployWithValue: names(deploy, true),
    deployFlags: names(deploy, false),
  };
}

export function normalizeArgv(argv: string[], grammar: ArgvGrammar): string[] {
  const before: string[] = [];
  const moved: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] ?? "";
    const name = a.split("=")[0] ?? a;
    if (!a.startsWith("-") || a === "--") break;
    const hasInlineValue = a.includes("=");
    if (grammar.globalWithValue.has(name)) {
      before.push(a);
      if (!hasInlineValue && i + 1 < argv.length) before.push(argv[++i] ?? "");
    } else if (grammar.deployWithValue.has(name)) {
      moved.push(a);
      if (!hasInlineValue && i + 1 < argv.length) moved.push(argv[++i] ?? "");
    } else if (grammar.deployFlags.has(name)) moved.push(a);
    else before.push(a);
  }
  const rest = argv.slice(i);
  const first = rest[0];
  if (first === undefined) return [...before, ...moved];
  if (!grammar.commands.has(first)) {
    // the seed's `houston … NAME VERSION`
    const positionals = rest.filter((a) => !a.startsWith("-"));
    if (positionals.length === 2) return [...before, "service", ...rest, ...moved];
    return [...before, ...rest, ...moved];
  }
  // `plan` takes the deploy flags on its subcommand (plan -g blue service web 2)
  if (first === "plan" && rest[1] !== undefined && !rest[1].startsWith("-"))
    return [...before, first, rest[1], ...moved, ...rest.slice(2)];
  return [...before, first, ...moved, ...rest.slice(1)];
}
