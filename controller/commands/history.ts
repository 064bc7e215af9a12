/**
 * `history`: a stack's deployments, or every stack's last ones, with their results and which
 * generations rollback can return to. A text table on stdout, or JSON with --json.
 */
import type { HistoryRecord } from "../../shared/spec.js";
import { historyStacks, listHistory } from "../../shared/stores/history.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import { table } from "./table.js";

/** Without a stack, `history` shows this many of each stack's last deployments. */
export const HISTORY_PER_STACK = 5;

/**
 * A stack's deployments (all of them), or every stack's last HISTORY_PER_STACK without one. The
 * generation column says which generations a deployment wrote: `6→7` when it ended with a later
 * one live (the prune of the old version, or a restore, writes the next), so it agrees with status.
 */
export async function historyCommand(
  ctx: Context,
  stack: string | undefined,
  json: boolean,
  out: Output,
): Promise<void> {
  const stacks = stack !== undefined ? [stack] : await historyStacks(ctx.consul, ctx.kv);
  const all = await Promise.all(
    stacks.map(async (s) => ({ stack: s, records: await listHistory(ctx.consul, ctx.kv, s) })),
  );
  // a successful generation can be rolled back to while every archive it used is still in Consul
  const present = new Set(await ctx.consul.kvKeys(ctx.kv.archives, "/"));
  const canRollBack = (r: HistoryRecord): boolean =>
    r.result === "success" && r.units.every((u) => !u.archive || present.has(ctx.kv.archive(u.archive)));
  const shown = all.map(({ stack: s, records }) => ({
    stack: s,
    total: records.length,
    records: stack === undefined ? records.slice(-HISTORY_PER_STACK) : records,
  }));
  if (json) {
    const rows = shown.flatMap(({ records }) =>
      records.map(({ units, ...r }) => ({
        ...r,
        units: units.map((u) => u.name),
        rollback: canRollBack({ ...r, units }),
      })),
    );
    out.print(JSON.stringify(rows, null, 2));
    return;
  }
  if (shown.every((s) => s.total === 0)) {
    out.print(stack !== undefined ? `no deployments of ${stack} recorded` : "no deployments recorded");
    return;
  }
  const rows = [
    [
      ...(stack === undefined ? ["STACK"] : []),
      "GENERATION",
      "RESULT",
      "ROLLBACK",
      "DURATION",
      "FINISHED",
      "BY",
      "DEPLOYMENT",
      "MESSAGE",
    ],
  ];
  let later = false;
  for (const { stack: s, records } of shown)
    for (const r of records) {
      const d = r.deployment;
      const rb =
        r.result !== "success"
          ? "-"
          : !canRollBack(r)
            ? "no (archive pruned)"
            : r.failedLater
              ? "only by generation"
              : "yes";
      const ended = r.finalGeneration !== null && r.finalGeneration !== r.generation;
      later ||= ended;
      rows.push([
        ...(stack === undefined ? [s] : []),
        ended ? `${r.generation}→${r.finalGeneration}` : String(r.generation),
        r.failedLater ? `${r.result}, failed later (${r.failedLater.unit} on ${r.failedLater.host})` : r.result,
        rb,
        `${(r.durationMs / 1000).toFixed(1)}s`,
        r.finishedAt,
        r.user,
        `${d.type} ${d.name}${d.version ? ` ${d.version}` : ""}${d.group ? `:${d.group}` : ""}`,
        r.message,
      ]);
    }
  out.print(table(rows));
  if (later)
    out.print(
      "A→B: the deployment wrote generation A and ended with B live (the prune of the old version or a restore wrote the later ones).",
    );
  const cut = shown.filter((s) => s.records.length < s.total);
  if (cut.length)
    out.print(
      `The last ${HISTORY_PER_STACK} of each stack: houston history STACK shows all (${cut.map((s) => `${s.stack}: ${s.total}`).join(", ")}).`,
    );
}
