/**
 * `remove STACK` on a terminal: says what will stop (each unit and the hosts that report it) and
 * asks before anything is written; `-y/--yes` skips the question. Off a terminal (scripts) it is
 * not asked, and says so. The list is pure (whatStops); the question is the terminal's edge.
 */
import { createInterface } from "node:readline/promises";
import type { StackSpec, StatusReport } from "../../shared/spec.js";
import { readSpec } from "../../shared/stores/specs.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";

/** One line per unit the removal stops, with the hosts that report it running (pure). */
export function whatStops(
  spec: Pick<StackSpec, "units">,
  group: string | null,
  reports: ReadonlyMap<string, StatusReport>,
): string[] {
  return spec.units
    .filter((u) => group === null || u.group === group)
    .map((u) => {
      const hosts = [...reports.values()]
        .filter((r) => r.units.some((x) => x.name === u.name && x.activeState !== "inactive"))
        .map((r) => r.node)
        .sort();
      return `  ${u.name} on ${hosts.length ? hosts.join(", ") : "no host (none reports it)"}`;
    });
}

/**
 * Whether to go on: true with --yes, or without a terminal (saying so: a script's removal goes on
 * as it always did, but not unsaid); otherwise the user's answer.
 */
export async function confirmRemove(
  ctx: Context,
  stack: string,
  group: string | null,
  yes: boolean,
  terminal: boolean,
  out: Output,
): Promise<boolean> {
  if (yes) return true;
  const { spec } = await readSpec(ctx.consul, ctx.kv, stack);
  if (!spec) return true; // the removal itself says the stack is not deployed
  if (!terminal) {
    out.info(`Removing ${stack}${group ? ` group ${group}` : ""} without asking: no terminal to ask on`);
    return true;
  }
  const reports = (await ctx.scheduler.reports()).get(stack) ?? new Map<string, StatusReport>();
  const lines = whatStops(spec, group, reports);
  process.stderr.write(
    `Removing ${stack}${group ? ` group ${group}` : ""} (generation ${spec.generation}) stops:\n${lines.join("\n") || "  no units"}\n`,
  );
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question("Remove them? [y/N] ");
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
