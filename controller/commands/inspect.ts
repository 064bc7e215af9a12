/**
 * Read-only commands: status (per host and unit, from agents' reports against the desired spec) and
 * nodes (history.ts: history). Text tables on stdout, or one JSON document with --json.
 */
import { retrying, type FleetMachine } from "../../shared/fleet.js";
import { errorText } from "../../shared/errors.js";
import type { HistoryRecord, StatusReport, UnitSpec } from "../../shared/spec.js";
import { listAgents } from "../../shared/stores/agents.js";
import { historyStacks, listHistory } from "../../shared/stores/history.js";
import { checkLeader, ignoredHolder, readLeader } from "../../shared/stores/leader.js";
import { listSpecs } from "../../shared/stores/specs.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import { isFleetStack } from "../../shared/fleet-mirror.js";
import { isGlobal } from "../../shared/placement.js";
import { specTargets } from "../scheduler/targets.js";
import { age, table } from "./table.js";

export async function statusCommand(
  ctx: Context,
  stack: string | undefined,
  json: boolean,
  out: Output,
): Promise<boolean> {
  const now = Date.now();
  const { specs, unreadable } = await listSpecs(ctx.consul, ctx.kv, stack || undefined);
  const specErrors = unreadable.map((u) => u.error);
  const reports = await ctx.scheduler.reports();
  // a stack whose spec is gone but which hosts still run and report errors for (with --trust: a
  // spec deleted without a signed removal keeps running, refused): say so, by host
  for (const [name, byHost] of reports) {
    if ((stack && name !== stack) || specs.some((s) => s.stack === name)) continue;
    for (const [node, r] of byHost)
      if (r.errors.length > 0) specErrors.push(`${name} on ${node} (no spec in KV): ${r.errors.join("; ")}`);
  }
  const hosts = await ctx.scheduler.hosts();
  const { placements } = await ctx.scheduler.view();
  const agentOf = new Map(hosts.map((h) => [h.node, h.agent]));
  // `status STACK`: after what is live, the failed attempt since (if any), from history
  const attempts = new Map<string, HistoryRecord>();
  if (stack)
    for (const spec of specs) {
      const last = await lastFailed(ctx, spec.stack);
      if (last) attempts.set(spec.stack, last);
    }
  // a stack with nothing live because its first deploy failed: its history row is all there is
  // (read together; a stack whose history does not read is `history`'s to report, not status's)
  const unspecified = (stack ? [stack] : await historyStacks(ctx.consul, ctx.kv)).filter(
    (name) => !specs.some((s) => s.stack === name) && !unreadable.some((u) => u.key === ctx.kv.spec(name)),
  );
  const neverLive = (
    await Promise.all(
      unspecified.map(async (name) => {
        const attempt = failedAttempt(await lastFailed(ctx, name).catch(() => undefined));
        return attempt ? [{ stack: name, failedAttempt: attempt }] : [];
      }),
    )
  ).flat();
  const stacks = specs.map((spec) => {
    const byHost: ReadonlyMap<string, StatusReport> = reports.get(spec.stack) ?? new Map<string, StatusReport>();
    const doc = placements.get(spec.stack);
    const { targets, unplaced } = specTargets(spec, doc, hosts);
    const replacing = replacingNow(spec.units, targets);
    const rows = spec.units.flatMap((u, i) =>
      (targets[i]?.hosts ?? [])
        // stop then start: where its replacement runs, the old version is gone (not missing)
        .filter((node) => !replacing.some((r) => r.unit === u.name && r.hosts.includes(node)))
        .map((node) => {
          const r = byHost.get(node);
          const s = r?.units.find((x) => x.name === u.name);
          // a report from a host whose agent is not passing may be stale: say so rather than trust it
          const agent = agentOf.get(node) ?? "missing";
          return {
            node,
            agent,
            unit: u.name,
            version: u.version,
            group: u.group,
            role: u.role,
            activeState: agent !== "passing" ? "unknown" : (s?.activeState ?? "missing"),
            reportedState: s?.activeState ?? null,
            subState: s?.subState ?? "-",
            result: s?.result ?? null,
            // ServicePort=auto or a range: the port the agent chose for it on that host
            port: s?.port ?? null,
            applied: r?.generation ?? null,
            seen: r?.desiredGeneration ?? null,
            converging: r?.converging ?? null,
            updatedAt: r?.updatedAt ?? null,
            errors: r?.errors ?? [],
          };
        }),
    );
    const stale = [...byHost.values()].flatMap((r) =>
      r.units
        .filter((x) => !spec.units.some((u) => u.name === x.name))
        .map((x) => ({
          node: r.node,
          unit: x.name,
          activeState: x.activeState,
          note: "not in the spec: being removed",
        })),
    );
    const waiting = spec.units
      // a global unit fleet runs is placed by fleet too (nowhere yet: nothing runs it)
      .filter((u, i) => (!isGlobal(u) || isFleetStack(spec)) && (targets[i]?.hosts.length ?? 0) === 0)
      .filter((u) => u.hosts === undefined)
      .filter((u) => !unplaced.some((x) => x.unit === u.name))
      .map((u) => ({
        unit: u.name,
        reason: doc
          ? `not placed yet (placements are for generation ${doc.generation})`
          : "not placed yet (no scheduler has written placements)",
      }));
    return {
      stack: spec.stack,
      generation: spec.generation,
      deployment: spec.deployment,
      createdAt: spec.createdAt,
      failedAttempt: failedAttempt(attempts.get(spec.stack)),
      units: rows,
      replacing,
      leaving: stale,
      placements: {
        generation: doc?.generation ?? null,
        scheduler: doc?.scheduler ?? null,
        note: doc?.note ?? null,
        unplaced: [...unplaced, ...waiting],
        moves: doc?.moves ?? [],
      },
    };
  });
  const healthy =
    stacks.every(
      (s) =>
        s.units.every((u) => u.activeState === "active" && u.errors.length === 0) && s.placements.unplaced.length === 0,
    ) && specErrors.length === 0;
  // `status STACK` for a name no deployment ever used (a typo, another cluster): not healthy
  const nothing = stacks.length === 0 && neverLive.length === 0 && specErrors.length === 0;
  const known = stack && nothing ? await historyStacks(ctx.consul, ctx.kv) : [];
  const unknown = stack !== undefined && stack !== "" && nothing && !known.includes(stack);
  // the stack asked about is not running because its deploy failed: not healthy
  const ok = healthy && !(stack && neverLive.length > 0) && !unknown;
  if (json) {
    out.print(JSON.stringify({ stacks, neverLive, errors: specErrors, hosts, healthy: ok }, null, 2));
    return ok;
  }
  if (unknown)
    out.print(
      `stack ${stack} is not deployed and no deployment of it is recorded${known.length > 0 ? ` (stacks with a history: ${known.join(", ")})` : ""}`,
    );
  else if (nothing) out.print(stack ? `stack ${stack} is not deployed` : "no stacks deployed");
  for (const { stack: name, failedAttempt: f } of neverLive)
    out.print(
      stack
        ? `stack ${name} is not deployed; last attempt ${f.result}: generation ${f.generation}, ${age(f.finishedAt, now)} ago: ${f.message}`
        : `${name}: nothing live; last attempt ${f.result}: generation ${f.generation}, ${deploymentText(f.deployment)}, ${age(f.finishedAt, now)} ago: ${f.message}`,
    );
  for (const s of stacks) {
    const d = s.deployment;
    out.print(
      `${s.stack}: live: generation ${s.generation}, ${d.type} ${d.name}${d.version ? ` ${d.version}` : ""}${d.group ? ` group ${d.group}` : ""}, written ${age(s.createdAt, now)} ago`,
    );
    const f = s.failedAttempt;
    if (f)
      out.print(
        `  last attempt ${f.result}: generation ${f.generation}, ${deploymentText(f.deployment)}, ${age(f.finishedAt, now)} ago: ${f.message}`,
      );
    const rows = [["  HOST", "UNIT", "VERSION", "STATE", "GENERATION", "AGE", "ERRORS"]];
    for (const u of s.units) {
      const gen = u.applied === null ? "-" : `${u.applied}${u.converging ? ` (→${u.seen})` : ""}`;
      const stateText =
        u.agent !== "passing"
          ? `unknown (agent ${u.agent}; last reported ${u.reportedState ?? "nothing"})`
          : `${u.activeState}/${u.subState}${u.result ? ` (${u.result})` : ""}`;
      // a shared socket: which versions of the service hold it on that host now
      const version =
        u.role === "socket"
          ? `shared by ${
              s.units
                .filter((x) => x.node === u.node && x.role === "service")
                .map((x) => x.version)
                .join(", ") || "-"
            }`
          : `${u.version}${u.port !== null ? ` (port ${u.port})` : ""}`;
      rows.push([
        `  ${u.node}`,
        u.unit,
        version,
        stateText,
        gen,
        age(u.updatedAt ?? undefined, now),
        u.errors.join("; "),
      ]);
    }
    for (const l of s.leaving) rows.push([`  ${l.node}`, l.unit, "", l.activeState, "", "", l.note]);
    for (const x of s.placements.unplaced) rows.push(["  -", x.unit, "", "unplaced", "", "", x.reason]);
    out.print(table(rows));
    for (const r of s.replacing)
      out.print(
        `  replacing ${r.unit} with ${r.by} on ${r.hosts.join(", ")} (stop then start; other hosts keep serving)`,
      );
    for (const m of s.placements.moves)
      out.print(`  moved ${m.unit} from ${m.from} to ${m.to ?? "nowhere"} ${age(m.at, now)} ago: ${m.reason}`);
    if (s.placements.note) out.warn(`${s.stack}: ${s.placements.note}`);
  }
  for (const e of specErrors) out.error(e);
  return ok;
}

export async function nodesCommand(ctx: Context, json: boolean, out: Output): Promise<void> {
  const agents = await listAgents(ctx.consul, ctx.kv);
  const records = [...agents.records.values()];
  const invalid = agents.ignored.map((u) => u.error);
  const hosts = await ctx.scheduler.hosts();
  const health = new Map(hosts.map((h) => [h.node, h.agent]));
  const fleet = await fleetMachines(ctx);
  const ids = new Set(fleet?.machines.map((m) => m.id) ?? []);
  const nodes = records.map((r) => ({
    node: r.node,
    agent: health.get(r.node) ?? "not registered",
    meta: r.meta,
    version: r.version,
    startedAt: r.startedAt,
    httpAddr: r.httpAddr ?? null,
    // null: the agent applies unsigned specs (anyone who can write the KV prefix controls it)
    trustedKeys: r.trustedKeys ?? null,
    machineId: r.machineId ?? null,
    // with a fleet: the fleet machine this agent runs on (by /etc/machine-id), or null
    fleetMachine: fleet && r.machineId && ids.has(r.machineId) ? r.machineId : null,
  }));
  const agentIds = new Set(records.flatMap((r) => (r.machineId ? [r.machineId] : [])));
  const fleetOnly = (fleet?.machines ?? []).filter((m) => !agentIds.has(m.id));
  // the holder is the session's node as Consul records it; an ill-shaped session is not the scheduler
  const leader = await checkLeader(ctx.consul, ctx.kv).catch(async (err: unknown) => {
    out.warn(`the scheduler role's session could not be read: ${errorText(err)}`);
    return { ...(await readLeader(ctx.consul, ctx.kv)), node: null, problem: null };
  });
  const scheduler = leader.session
    ? {
        node: leader.node ?? leader.record?.node ?? "?",
        since: leader.record?.since ?? "?",
        ...(leader.problem ? { ignored: ignoredHolder(leader) } : {}),
      }
    : null;
  if (json) {
    out.print(
      JSON.stringify(
        {
          nodes,
          scheduler,
          fleet: fleet && {
            endpoint: fleet.endpoint,
            error: fleet.error,
            machines: fleet.machines,
            withoutAgent: fleetOnly.map((m) => m.id),
          },
          errors: invalid,
        },
        null,
        2,
      ),
    );
    return;
  }
  const rows = [["NODE", "AGENT", "VERSION", "STARTED", "SPECS", ...(fleet ? ["FLEET"] : []), "METADATA"]];
  for (const n of nodes) {
    const specs =
      n.trustedKeys === null ? "unsigned accepted" : `signed by ${n.trustedKeys.join(",") || "(no readable key)"}`;
    const fleetCell = n.fleetMachine ? n.fleetMachine.slice(0, 8) : "NO FLEET MACHINE";
    rows.push([
      n.node,
      n.agent,
      n.version,
      n.startedAt,
      specs,
      ...(fleet && !fleet.error ? [fleetCell] : fleet ? ["?"] : []),
      Object.entries(n.meta)
        .filter(([, v]) => v !== "")
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
    ]);
  }
  for (const m of fleetOnly)
    rows.push([
      "-",
      "NO HOUSTON AGENT",
      "",
      "",
      "",
      m.id.slice(0, 8),
      Object.entries(m.metadata ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
    ]);
  out.print(rows.length > 1 ? table(rows) : "no Houston agents registered");
  if (fleet?.error) out.warn(`fleet at ${fleet.endpoint}: ${fleet.error}`);
  out.print(
    scheduler
      ? `scheduler: ${scheduler.node} (since ${scheduler.since})`
      : "scheduler: no agent holds the role (non-global units are not placed)",
  );
  if (scheduler?.ignored) out.warn(scheduler.ignored);
  for (const e of invalid) out.error(e);
}

/** The environment's fleet machines (manifest `fleet:`), or why they could not be read; null without a fleet. */
async function fleetMachines(
  ctx: Context,
): Promise<{ endpoint: string; machines: FleetMachine[]; error: string | null } | null> {
  const fleet = ctx.fleet;
  if (!fleet) return null;
  try {
    const machines = await retrying(() => fleet.machines(), Date.now() + 10_000);
    return { endpoint: fleet.endpoint, machines, error: null };
  } catch (err) {
    return { endpoint: fleet.endpoint, machines: [], error: errorText(err) };
  }
}

/** the history results of an attempt that did not take: status names the last one */
const FAILED_RESULTS: readonly string[] = ["failed", "rolled-back", "interrupted"];

/** The stack's last history record if it is an attempt that did not take. */
async function lastFailed(ctx: Context, stack: string): Promise<HistoryRecord | undefined> {
  const last = (await listHistory(ctx.consul, ctx.kv, stack)).at(-1);
  return last && FAILED_RESULTS.includes(last.result) ? last : undefined;
}

const deploymentText = (d: HistoryRecord["deployment"]): string =>
  `${d.type} ${d.name}${d.version ? ` ${d.version}` : ""}`;

/** A failed attempt as `status` shows it (null: none). */
function failedAttempt(
  r: HistoryRecord | undefined,
): Pick<HistoryRecord, "generation" | "result" | "deployment" | "finishedAt" | "message"> | null {
  if (!r) return null;
  return {
    generation: r.generation,
    result: r.result,
    deployment: r.deployment,
    finishedAt: r.finishedAt,
    message: r.message,
  };
}

/**
 * A rollout stopping then starting, as its spec shows it: each unit that replaces one still in the
 * spec, and the hosts it was placed on (where the old one was stopped first).
 */
export function replacingNow(
  units: UnitSpec[],
  targets: { name: string; hosts: string[] }[],
): { unit: string; by: string; hosts: string[] }[] {
  const names = new Set(units.map((u) => u.name));
  // a unit that another unit of the spec replaces replaces nothing itself (a spec naming both ways,
  // as older controllers could write going back a version, hides neither: missing shows)
  const replacedBy = new Set(units.flatMap((u) => u.replaces ?? []));
  return units.flatMap((u) =>
    (replacedBy.has(u.name) ? [] : (u.replaces ?? []))
      .filter((old) => names.has(old))
      .map((old) => ({ unit: old, by: u.name, hosts: targets.find((t) => t.name === u.name)?.hosts ?? [] }))
      .filter((r) => r.hosts.length > 0),
  );
}
