/**
 * `houston plan …`: the rendered deployment, and what it would change against Consul now: against
 * a live stack, unchanged units in one line, changed ones (and a new version against the one it
 * replaces) as a unified diff, removed ones marked; every unit's whole text with --full, or when
 * nothing is live. Needs no Consul to render; says so when Consul is unreachable.
 */
import { ConfigError, ConsulUnreachableError, errorText } from "../../shared/errors.js";
import { loadDeploymentInputs } from "../config/load.js";
import type { Manifest } from "../config/manifest.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import { diffPlan, type PlanDiff } from "../plan/diff.js";
import { planDeployment, type DeploymentRequest, type Plan } from "../plan/plan-deployment.js";
import { readSpec } from "../../shared/stores/specs.js";
import type { StackSpec, UnitSpec } from "../../shared/spec.js";
import { unifiedDiff } from "../plan/unified-diff.js";
import { UnplaceableUnitError } from "../scheduler/targets.js";
import { checkNameClash } from "../plan/clash.js";
import { isGlobal } from "../../shared/placement.js";
import { deploymentWindows } from "../plan/watch-window.js";
import { droppedDependencies } from "../plan/together.js";

export function makePlan(ctx: Context, manifest: Manifest, req: DeploymentRequest): Plan {
  const inputs = loadDeploymentInputs(ctx.dir, req, manifest);
  const plan = planDeployment(inputs, req, ctx.scheduler.unitRules);
  for (const a of plan.archives) {
    // KV and every agent hold each archive: refuse the oversized at plan time
    if (a.bytes.length > ctx.maxArchiveBytes) {
      throw new ConfigError(
        inputs.filesSource,
        `the file archive is ${mib(a.bytes.length)} MiB, over the limit of ${mib(ctx.maxArchiveBytes)} MiB (--max-archive-size)`,
      );
    }
  }
  return plan;
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1).replace(/\.0$/, "");
}

export async function planCommand(
  ctx: Context,
  manifest: Manifest,
  req: DeploymentRequest,
  out: Output,
  json: boolean,
  full = false,
): Promise<void> {
  const plan = makePlan(ctx, manifest, req);
  // at the rollout's defaults (--delay 5, no --min-healthy): how long each unit is watched once active
  const windows = deploymentWindows(plan.units, plan.deployment.type, {
    flag: null,
    environment: manifest.environments[req.environment]?.minHealthy ?? null,
    delaySeconds: 5,
    skipConsul: false,
  });
  const windowOf = (name: string): string => windows.find((w) => w.unit === name)?.why ?? "";
  let diff: PlanDiff | null = null;
  let live: StackSpec | null = null;
  let consul: { reachable: boolean; address: string; error?: string; generation?: number | null };
  /** where each unit would run now (the scheduler's preview), or why it cannot be placed */
  let placement: { hosts: Record<string, string[]>; error: string | null } | null = null;
  try {
    const { spec } = await readSpec(ctx.consul, ctx.kv, plan.stack);
    live = spec;
    diff = diffPlan(plan.units, req.group, spec);
    consul = { reachable: true, address: ctx.consul.addr, generation: spec?.generation ?? null };
    const view = await ctx.scheduler.view();
    checkNameClash(plan.stack, plan.units, view.specs);
    try {
      const targets = ctx.scheduler.place(plan.units, await ctx.scheduler.hosts(), view);
      placement = { hosts: Object.fromEntries(targets.map((t) => [t.name, t.hosts])), error: null };
    } catch (err) {
      if (!(err instanceof UnplaceableUnitError)) throw err;
      placement = { hosts: {}, error: errorText(err) };
    }
  } catch (err) {
    if (!(err instanceof ConsulUnreachableError)) throw err;
    consul = { reachable: false, address: ctx.consul.addr, error: errorText(err) };
  }
  if (json) {
    out.print(
      JSON.stringify(
        {
          stack: plan.stack,
          environment: plan.environment,
          deployment: plan.deployment,
          units: plan.units.map((u) => ({
            name: u.name,
            role: u.role,
            version: u.version,
            group: u.group,
            placements: u.placements,
            service: u.service ?? null,
            archive: u.archive ?? null,
            text: u.text,
            window: windows.find((w) => w.unit === u.name) ?? null,
          })),
          archives: plan.archives.map((a) => ({
            sha256: a.sha256,
            size: a.bytes.length,
            files: a.files.map((f) => f.path),
            modes: a.files.map((f) => ({
              path: f.path,
              mode: `0${f.mode.toString(8)}`,
              owner: f.owner,
              group: f.group,
            })),
          })),
          diff,
          strategies: plan.strategies,
          scheduler: ctx.scheduler.name,
          placement,
          consul,
        },
        null,
        2,
      ),
    );
    return;
  }
  const d = plan.deployment;
  out.info(
    `Plan: ${d.type} ${d.name}${d.version ? ` ${d.version}` : ""}${d.group ? ` group ${d.group}` : ""} in ${plan.environment} (stack ${plan.stack})`,
  );
  if (ctx.scheduler.planNote) out.info(ctx.scheduler.planNote);
  for (const u of plan.units) {
    const state = diff
      ? diff.added.includes(u.name)
        ? "new"
        : diff.changed.includes(u.name)
          ? "changed"
          : "unchanged"
      : "rendered";
    const shared =
      u.role === "socket"
        ? `; every version of ${plan.units.find((x) => x.role === "service")?.name.replace(/@.*$/, "@*") ?? "the service"} shares it, old and new alike during an upgrade`
        : "";
    const on = placement?.hosts[u.name];
    const where = on ? ` → ${on.length ? on.join(", ") : "no host yet"}${isGlobal(u) ? " (global)" : ""}` : "";
    // against a live stack, what changes: a unified diff (a new version against the one it replaces)
    const before = live && !full ? unitBefore(u, live, diff) : null;
    out.info(
      `Unit ${u.name} (${u.role}, ${state}${before?.replaces ? `, replaces ${before.replaces}` : ""}${shared})${where}`,
    );
    out.info(`  watched once active: ${windowOf(u.name)}`);
    if (state === "unchanged" && before) continue;
    const text = ctx.scheduler.unitText(plan.stack, u);
    const shown = before ? changeOf(ctx, plan.stack, before.unit, u, live?.generation) : text;
    out.print(shown.replace(/^/gm, "    ").trimEnd() + "\n");
  }
  for (const { unit, strategy } of plan.strategies) {
    out.info(`Upgrade of ${unit.replace(/@[^@]*$/, "@*")}: ${strategy.reason}`);
    if (strategy.warning) out.warn(`${unit}: ${strategy.warning}`);
  }
  for (const a of plan.archives) {
    out.info(
      `Archive ${a.sha256} (${a.bytes.length} bytes): ${a.files.map((f) => `${f.path} 0${f.mode.toString(8)} ${f.owner}:${f.group}`).join(", ")}`,
    );
  }
  if (!consul.reachable) out.warn(`No Consul to compare with, showing the rendering only: ${consul.error ?? ""}`);
  else if (diff) {
    out.info(
      `Against Consul (generation ${consul.generation ?? "none"}): ${diff.added.length} new, ${diff.changed.length} changed, ${diff.unchanged.length} unchanged`,
    );
    for (const r of diff.replaced) out.info(`Would remove after confirmation: ${r}`);
    if (live && !full) out.info("Unchanged units in one line, changed ones as a diff: --full shows every unit's text");
    for (const r of diff.untouched) out.info(`Left alone: ${r}`);
    if (placement?.error) out.warn(`Would fail: ${placement.error}`);
    else if (placement)
      for (const w of droppedDependencies(plan.units, new Map(Object.entries(placement.hosts)))) out.warn(w);
  }
}

/**
 * The live unit a planned one is compared with: the same unit (changed or unchanged), or for a new
 * one the replaced unit of the same name at another version (`web@1` for `web@2`); null: all new.
 */
function unitBefore(u: UnitSpec, live: StackSpec, diff: PlanDiff | null): { unit: UnitSpec; replaces?: string } | null {
  const same = live.units.find((x) => x.name === u.name);
  if (same) return { unit: same };
  const base = u.name.replace(/@.*$/, "");
  const old = live.units.find((x) => diff?.replaced.includes(x.name) && x.name.replace(/@.*$/, "") === base);
  return old ? { unit: old, replaces: old.name } : null;
}

/** A unit's text as a diff against the live one; its placement when only that changed. */
function changeOf(ctx: Context, stack: string, before: UnitSpec, u: UnitSpec, generation: number | undefined): string {
  const from = `${before.name} (generation ${generation ?? "?"})`;
  const text = unifiedDiff(
    ctx.scheduler.unitText(stack, before),
    ctx.scheduler.unitText(stack, u),
    from,
    `${u.name} (this plan)`,
  );
  const placed = JSON.stringify(u.placements);
  if (JSON.stringify(before.placements) !== placed)
    return `${text}${text ? "\n" : ""}placement: ${JSON.stringify(before.placements)} → ${placed}`;
  return text || `the same text as ${from}`;
}
