/**
 * The seed's command lines, normalised for commander (pure):
 *  - deploy flags may come before the command (`houston -e test -g blue service web 2`): they are
 *    moved after it, as are other commands' own options (`houston -y remove web`); Houston's own
 *    options may come anywhere (commander reads them after the command);
 *  - the seed's bare form `houston -c config -e ENV NAME VERSION [options]` means
 *    `service NAME VERSION [options]`, options before or after the two words alike.
 * Which words are commands and which options take a value is read from the commander program
 * (argvGrammar): the options are declared once, in controller/cli.ts and commands/register.ts, so a
 * flag's value (`--min-healthy 3`) is never counted as a word of the command.
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
  /** every command's (and subcommand's) options that take a value: their values are not words */
  anyWithValue: ReadonlySet<string>;
  /** every command's (and subcommand's) options that take no value */
  anyFlags: ReadonlySet<string>;
}

function names(options: readonly Option[], withValue: boolean): Set<string> {
  return new Set(
    options
      .filter((o) => (o.required || o.optional) === withValue)
      .flatMap((o) => [o.short, o.long].filter((n): n is string => n !== undefined)),
  );
}

function allCommands(c: Command): Command[] {
  return c.commands.flatMap((sub) => [sub, ...allCommands(sub)]);
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
    anyWithValue: new Set([
      ...names(program.options, true),
      ...allCommands(program).flatMap((c) => [...names(c.options, true)]),
    ]),
    anyFlags: new Set(allCommands(program).flatMap((c) => [...names(c.options, false)])),
  };
}

interface Token {
  /** the option and its value, or one word */
  words: string[];
  /** command-option: some command's own (it goes after the command); other-option: nobody's (--help) */
  kind: "global" | "deploy" | "command-option" | "other-option" | "word";
}

/** Splits a command line into options (with their values) and words, by the grammar. */
function tokens(argv: string[], g: ArgvGrammar): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === "--") {
      out.push(...argv.slice(i).map((w): Token => ({ words: [w], kind: "word" })));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      out.push({ words: [a], kind: "word" });
      continue;
    }
    const name = a.startsWith("--") ? (a.split("=")[0] ?? a) : a.slice(0, 2);
    // `--name=value`, or a short option with its value attached (`-d3`)
    const inline = a.startsWith("--") ? a.includes("=") : a.length > 2;
    // the program's and a deployment's own arity first: another command's same-named option may differ
    const withValue =
      g.globalWithValue.has(name) ||
      g.deployWithValue.has(name) ||
      (!g.deployFlags.has(name) && g.anyWithValue.has(name));
    const words = withValue && !inline && i + 1 < argv.length ? [a, argv[++i] ?? ""] : [a];
    const kind = g.globalWithValue.has(name)
      ? "global"
      : g.deployWithValue.has(name) || g.deployFlags.has(name)
        ? "deploy"
        : g.anyWithValue.has(name) || g.anyFlags.has(name)
          ? "command-option"
          : "other-option";
    out.push({ words, kind });
  }
  return out;
}

export function normalizeArgv(argv: string[], grammar: ArgvGrammar): string[] {
  const toks = tokens(argv, grammar);
  const first = toks.findIndex((t) => t.kind === "word");
  if (first < 0) return argv;
  const flat = (ts: Token[]): string[] => ts.flatMap((t) => t.words);
  const before = toks.slice(0, first);
  // options before the command: the program's stay in front of it, a command's go after it
  const goesAfter = (t: Token): boolean => t.kind === "deploy" || t.kind === "command-option";
  const staying = flat(before.filter((t) => !goesAfter(t)));
  const moved = flat(before.filter(goesAfter));
  const rest = toks.slice(first);
  const command = rest[0]?.words[0] ?? "";
  if (!grammar.commands.has(command)) {
    // the seed's `houston … NAME VERSION`, options anywhere around the two words
    const words = rest.filter((t) => t.kind === "word").length;
    if (words === 2 && command !== "--") return [...staying, "service", ...moved, ...flat(rest)];
    return [...staying, ...flat(rest), ...moved];
  }
  // `plan` takes the deploy flags on its subcommand (plan -g blue service web 2)
  const sub = rest.findIndex((t, i) => i > 0 && t.kind === "word");
  if (command === "plan" && sub > 0)
    return [
      ...staying,
      command,
      ...flat(rest.slice(sub, sub + 1)),
      ...moved,
      ...flat(rest.slice(1, sub)),
      ...flat(rest.slice(sub + 1)),
    ];
  return [...staying, command, ...moved, ...flat(rest.slice(1))];
}
