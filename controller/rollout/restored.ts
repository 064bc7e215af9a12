/**
 * After a failed rollout's restore (I/O, through the scheduler): the restored units seen active
 * again on every host they are placed on — under stop then start the old version is started again
 * where the new one replaced it — so that the rollout says they are active again only when the
 * hosts report it. Followed with blocking queries and a progress line, within a bound; a host
 * whose agent is not passing (at the start, or by the end) is named, not its units.
 */
import type { StatusReport, UnitSpec } from "../../shared/spec.js";
import type { Output } from "../output.js";
import { TimeoutError } from "../scheduler/agent-reports.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { HostView } from "../scheduler/targets.js";
import { placedUnlessRefused } from "./placed.js";
import { decide, refusal } from "./progress.js";

/**
 * What is not serving yet at `deadline` (empty: every restored unit is active where it is placed).
 * A host whose agent is not passing now cannot say: it is named, not waited for.
 */
export async function awaitRestored(
  scheduler: Scheduler,
  stack: string,
  generation: number,
  units: UnitSpec[],
  hosts: HostView[],
  deadline: number,
  out: Output,
  /** the rollout's first generation: a host that refused it never left what it ran before */
  since = generation,
): Promise<string[]> {
  let pending: string[] = [];
  const away = hosts.filter((h) => h.agent !== "passing").map((h) => h.node);
  // a host that refused this rollout's spec kept running what it ran: nothing to wait for there
  const reports = (await scheduler.reports()).get(stack) ?? new Map<string, StatusReport>();
  const kept = [...reports].flatMap(([host, r]) =>
    r.refused && r.refused.generation !== null && r.refused.generation >= since && !away.includes(host)
      ? [{ host, reason: r.refused.reason }]
      : [],
  );
  const keptNotes = kept.map((k) => `${k.host} refused this rollout's specs (${k.reason}): it runs what it ran before`);
  if (kept.length > 0 && kept.length === reports.size) return keptNotes;
  const skip = new Set([...away, ...kept.map((k) => k.host)]);
  try {
    // an agent that refuses the restored spec (unsigned, say) will not place or start it: said at once
    const placed = await placedUnlessRefused(scheduler, { stack, generation, units, hosts, deadline }, (reports) =>
      refusal(
        generation,
        reports,
        [...reports.keys()].sort().filter((h) => !skip.has(h)),
      ),
    );
    if (placed.kind === "refused") return [placed.reason];
    pending = placed.unplaced.map((u) => `${u.unit} could not be placed: ${u.reason}`);
    if (pending.length > 0) return pending;
    const unseen = placed.targets.flatMap((t) =>
      t.hosts.filter((h) => away.includes(h)).map((h) => `${t.name} on ${h}`),
    );
    const notes = [
      ...(unseen.length ? [`${unseen.join(", ")}: the host's agent is not passing, so not vouched for`] : []),
      ...keptNotes,
    ];
    const targets = placed.targets.map((t) => ({ ...t, hosts: t.hosts.filter((h) => !skip.has(h)) }));
    await scheduler.follow(
      stack,
      deadline,
      (reports) => {
        const d = decide(targets, generation, reports);
        if (d.kind === "done") {
          pending = notes;
          return true;
        }
        pending = [
          d.kind === "failed"
            ? `${d.unit} failed on ${d.host}: ${d.reason}`
            : `${d.unit} is not active yet on ${d.pending.join(", ")}`,
          ...notes,
        ];
        if (d.kind === "failed") return false;
        out.progress(`restoring: ${pending.join("; ")}`);
        return undefined;
      },
      () => pending.join("; "),
    );
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    if (pending.length === 0) pending = [`no placement or report for generation ${generation} (${err.message})`];
    // an agent that stopped during the wait (Consul takes a while to say so): named, not its units
    const now = await scheduler.hosts().catch(() => []);
    const gone = now.filter((h) => h.agent !== "passing" && !away.includes(h.node)).map((h) => h.node);
    if (gone.length > 0)
      pending = [
        ...pending,
        `${gone.join(", ")}: the host's agent stopped passing meanwhile, so its report is no evidence`,
      ];
  } finally {
    out.progress("");
  }
  return pending;
}

/** The restore's last line: what the hosts were seen running again, or a warning naming what not. */
export async function sayRestored(
  scheduler: Scheduler,
  stack: string,
  from: number,
  generation: number,
  units: UnitSpec[],
  out: Output,
  o: { until: number; since: number },
): Promise<void> {
  const hosts = await scheduler.hosts();
  const unwell = await awaitRestored(scheduler, stack, generation, units, hosts, o.until, out, o.since);
  if (unwell.length > 0)
    out.warn(
      `Restored generation ${from}'s units as generation ${generation}, but not all are seen active again: ${unwell.join("; ")} (see houston status ${stack})`,
    );
  else out.info(`Restored generation ${from}'s units as generation ${generation}: active again on every host`);
}
