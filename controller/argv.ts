/**
 * The seed's command lines, normalised for commander (pure):
 *  - deploy flags may come before the command (`houston -e test -g blue service web 2`): they are
 *    moved after it;
 *  - the seed's bare form `houston -c config -e ENV NAME VERSION` means `service NAME VERSION`.
 */
const COMMANDS = new Set([
  "plan",
  "keygen",
  "acl",
  "host-config",
  "service",
  "standalone",
  "global",
  "remove",
  "rollback",
  "status",
  "history",
  "nodes",
  "adopt",
  "help",
]);
/** program-level options that take a value (they stay where they are) */
const GLOBAL_WITH_VALUE = new Set([
  "-c",
  "--config",
  "-e",
  "--environment",
  "--consul",
  "--token",
  "--prefix",
  "--signing-key",
  "--ca-file",
  "--client-cert",
  "--client-key",
  "--tls-server-name",
  "--max-archive-size",
]);
const DEPLOY_WITH_VALUE = new Set([
  "-g",
  "--group",
  "-d",
  "--delay",
  "-m",
  "--max-tries",
  "--timeout",
  "--max-parallel",
  "--canary",
  "--min-healthy",
  "--keep-generations",
]);
const DEPLOY_FLAGS = new Set([
  "--no-dependencies",
  "-n",
  "--no-removal",
  "--remove",
  "-s",
  "--skip-consul",
  "--force-unlock",
]);

export function normalizeArgv(argv: string[]): string[] {
  const before: string[] = [];
  const moved: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] ?? "";
    const name = a.split("=")[0] ?? a;
    if (!a.startsWith("-") || a === "--") break;
    const hasInlineValue = a.includes("=");
    if (GLOBAL_WITH_VALUE.has(name)) {
      before.push(a);
      if (!hasInlineValue && i + 1 < argv.length) before.push(argv[++i] ?? "");
    } else if (DEPLOY_WITH_VALUE.has(name)) {
      moved.push(a);
      if (!hasInlineValue && i + 1 < argv.length) moved.push(argv[++i] ?? "");
    } else if (DEPLOY_FLAGS.has(name)) moved.push(a);
    else before.push(a);
  }
  const rest = argv.slice(i);
  const first = rest[0];
  if (first === undefined) return [...before, ...moved];
  if (!COMMANDS.has(first)) {
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
