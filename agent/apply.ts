/**
 * Carries out reconcile steps against the edges (systemd, files, Consul, state). A failing step
 * marks its stack as errored for this pass and the stack's later steps are skipped; other stacks
 * go on (a failing step of no stack, the daemon reload, marks every stack of the pass). Nothing
 * here decides *what* to do: that is reconcile.ts; only how (stops go to systemd together, a
 * service's name and check URL are checked again before it is registered; a unit's port drop-in
 * is written before its file, in `<unit>.d/`, and removed with it).
 */
import type { KeyObject } from "node:crypto";
import { realpathSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { Consul } from "../shared/consul.js";
import { StepFailedError, UnitRefusedError, errorText } from "../shared/errors.js";
import type { KvLayout } from "../shared/kv-layout.js";
import { checkTargetProblem, checkUrlOf, serviceNameProblem, serviceTags } from "../shared/spec.js";
import { fetchArchive } from "../shared/archive-store.js";
import { installArchive, parseArchive, removeArchive } from "./archive.js";
import type { Step } from "./reconcile.js";
import { HealthProbe } from "./probe.js";
import { PORT_DROP_IN } from "./ports.js";
import { makeDirectories, removeSafely, resolveDirectory, writeFileSafely } from "./safe-fs.js";
import type { AgentState } from "./state.js";
import { readAdoptedFiles } from "../shared/stores/adopted.js";
import type { TrustStore } from "../shared/signing.js";
import type { SystemdApi } from "./systemd.js";

export interface ApplyDeps {
  systemd: SystemdApi;
  state: AgentState;
  consul: Consul;
  kv: KvLayout;
  root: string;
  unitDir: string;
  startTimeoutMs: number;
  maxArchiveBytes: number;
  /** the keys a record of the controller's must be signed by (none configured: it is taken as written) */
  trust: TrustStore;
  /** this agent's cluster name, which a signed record must be for */
  cluster: string;
  log(message: string): void;
}

/**
 * Runs the steps in order; returns the errors per stack. A run of stops goes to systemd together
 * (up to STOPS_AT_ONCE): it orders stop jobs by the units' dependencies whichever call queued them
 * (a unit stops after those ordered after it), so waiting for each in turn only adds up their times.
 */
export async function applySteps(steps: Step[], deps: ApplyDeps): Promise<Map<string, string[]>> {
  const errors = new Map<string, string[]>();
  // a service's first health check, by the agent: one per pass, its budget is the pass's
  const d = { ...deps, probe: new HealthProbe() };
  const run = async (step: Step): Promise<void> => {
    const stack = "stack" in step ? step.stack : null;
    if (stack && errors.has(stack)) return;
    try {
      await applyStep(step, d);
    } catch (err) {
      const text = `${describe(step)}: ${errorText(err)}`;
      deps.log(`error: ${text}`);
      if (stack) errors.set(stack, [...(errors.get(stack) ?? []), text]);
      else
        for (const s of new Set(steps.flatMap((x) => ("stack" in x ? [x.stack] : []))))
          errors.set(s, [...(errors.get(s) ?? []), text]);
    }
  };
  for (let i = 0; i < steps.length;) {
    let end = i + 1;
    if (steps[i]!.kind === "stop-unit") while (steps[end]?.kind === "stop-unit") end++;
    const batch = steps.slice(i, end);
    // the system bus allows a connection only so many calls awaiting replies (128 by default)
    const queue = [...batch];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) await run(next);
    };
    await Promise.all(Array.from({ length: Math.min(STOPS_AT_ONCE, batch.length) }, worker));
    if (batch[0]!.kind === "stop-unit") await resetStopped(batch, d, errors);
    i = end;
  }
  return errors;
}

/**
 * A stopped unit that failed stays listed as failed (and its name held) until reset: one look at
 * the batch's units, then a reset of those that failed.
 */
async function resetStopped(batch: Step[], d: ApplyDeps, errors: Map<string, string[]>): Promise<void> {
  const stopped = batch.flatMap((s) => (s.kind === "stop-unit" && !errors.has(s.stack) ? [s] : []));
  try {
    const states = await d.systemd.unitStates(stopped.map((s) => s.name));
    for (const s of stopped) if (states.get(s.name)?.activeState === "failed") await d.systemd.resetFailed(s.name);
  } catch (err) {
    const text = `reset-failed: ${errorText(err)}`;
    d.log(`error: ${text}`);
    for (const s of stopped) errors.set(s.stack, [...(errors.get(s.stack) ?? []), text]);
  }
}

/**
 * The files the original Houston's archive of `stack` wrote, as `houston adopt` recorded them in
 * stacks/<stack>/adopted (shared/stores/adopted.ts: the controller's, signed when this agent has
 * trusted keys): a deploy of that stack may replace exactly these (and removing its archive before
 * one is confirmed puts back what the original wrote). Nothing when the record is absent, cannot be
 * read or does not verify: nothing is guessed, and never from fleet/owned (any agent may write it).
 */
export async function originalFiles(
  d: Pick<ApplyDeps, "consul" | "kv" | "trust" | "cluster" | "log">,
  stack: string,
): Promise<ReadonlySet<string>> {
  let trusted: Map<string, KeyObject> | Error | null = null;
  if (d.trust.configured)
    try {
      trusted = d.trust.keys();
    } catch (err) {
      trusted = err instanceof Error ? err : new Error(errorText(err));
    }
  const r = await readAdoptedFiles(d.consul, d.kv, stack, trusted, d.cluster);
  if (r.problem) d.log(`no file of the original Houston is taken over for ${stack}: ${r.problem}`);
  return r.paths;
}

/** Stop jobs in flight at once: each holds two D-Bus calls at most, well under the bus's limit. */
const STOPS_AT_ONCE = 16;

export function describe(step: Step): string {
  switch (step.kind) {
    case "reload":
      return "daemon reload";
    case "install-archive":
    case "remove-archive":
      return `${step.kind} ${step.sha.slice(0, 12)}`;
    default:
      return `${step.kind} ${step.name}`;
  }
}

async function applyStep(step: Step, d: ApplyDeps & { probe: HealthProbe }): Promise<void> {
  switch (step.kind) {
    case "blocked":
      throw new UnitRefusedError(step.reason);
    case "install-archive": {
      const bytes = await fetchArchive(d.consul, d.kv, step.sha, d.maxArchiveBytes);
      const entries = await parseArchive(bytes, step.sha);
      const takeover = await originalFiles(d, step.stack);
      installArchive(entries, step.sha, step.stack, d.root, d.state, d.unitDir, takeover);
      d.log(`installed archive ${step.sha.slice(0, 12)} of ${step.stack}`);
      return;
    }
    case "write-unit": {
      d.state.claimUnit(step.name, step.stack, step.hash);
      const uid = process.getuid?.() ?? 0;
      const mode = { mode: 0o644, uid, gid: process.getgid?.() ?? uid };
      const unitDir = realpathSync.native(d.unitDir);
      if (step.dropIn !== undefined) {
        const dir = resolveDirectory(unitDir, `${step.name}.d`);
        makeDirectories(unitDir, dir.missing);
        writeFileSafely(dir.real, PORT_DROP_IN, { data: step.dropIn, ...mode });
      }
      if (step.removeDropIn) removeDropIn(unitDir, step.name);
      writeFileSafely(unitDir, step.name, { data: step.text, ...mode });
      return;
    }
    case "deregister-service":
      await d.consul.agentServiceDeregister(step.serviceId);
      if (step.runner === "fleet") d.state.forgetFleetService(step.name);
      else d.state.setServiceId(step.name, null);
      return;
    case "stop-unit": {
      // a unit that failed, before or while stopping, is reset after its batch (resetStopped)
      const result = await d.systemd.stopUnit(step.name, d.startTimeoutMs);
      d.log(`stopped ${step.name} (${result})`);
      return;
    }
    case "remove-unit-file": {
      // recorded first: should the agent stop before its reload, the next pass reloads
      d.state.setReloadPending(true);
      const unitDir = realpathSync.native(d.unitDir);
      removeDropIn(unitDir, step.name);
      const why = removeSafely(unitDir, step.name, "file");
      if (why) throw new UnitRefusedError(why);
      d.state.forgetUnit(step.name);
      return;
    }
    case "reload":
      // only files added, under names systemd did not have: skipped once it loaded each (v246 on)
      if (step.added && (await d.systemd.allLoaded(step.added))) return;
      await d.systemd.reload();
      d.state.setReloadPending(false);
      return;
    case "start-unit": {
      const at = Date.now();
      const result = step.restart
        ? await d.systemd.restartUnit(step.name, d.startTimeoutMs)
        : await d.systemd.startUnit(step.name, d.startTimeoutMs);
      // started once per content, whatever the outcome: a failure is reported, not retried in a loop
      d.state.markStarted(step.name, step.hash, at);
      d.log(`${step.restart ? "restarted" : "started"} ${step.name}: job ${result}`);
      if (result === "timeout")
        throw new StepFailedError(`systemd did not finish starting ${step.name} within ${d.startTimeoutMs / 1000}s`);
      return;
    }
    case "register-service": {
      const s = step.service;
      const url = checkUrlOf(s, step.port);
      // re-checked here, by the party that acts on it (and before the agent asks the URL itself)
      const problem =
        serviceNameProblem(step.stack, s.name) ?? (s.checkHttp ? checkTargetProblem(url, ownAddresses()) : null);
      if (problem) throw new StepFailedError(`not registering ${s.name}: ${problem}`);
      // Consul keeps a re-registered check's status: the old process's is not the new one's
      if (step.resetCheck) await d.consul.agentServiceDeregister(step.serviceId);
      const passed = !step.sharedPort && (await d.probe.passes(url, CHECK_TIMEOUT_MS));
      await d.consul.agentServiceRegister({
        ID: step.serviceId,
        Name: s.name,
        Port: step.port,
        Tags: serviceTags(step.version, step.group),
        Meta: { houston_unit: step.name, houston_stack: step.stack },
        Check: {
          HTTP: url,
          Interval: s.interval,
          Timeout: `${CHECK_TIMEOUT_MS}ms`,
          // not passed yet: "warning" until Consul's own first run. That run's result then changes the
          // status, so Consul sends its output (a 404, a refused connection) to the catalog at once;
          // from "critical" to "critical" it would hold the output back for up to 5 minutes
          // (check_update_interval), and the rollout could not quote the answer
          Status: passed ? "passing" : "warning",
        },
      });
      const how = passed
        ? "its check passed (asked by the agent)"
        : step.sharedPort
          ? "another version serves its port, Consul's check will tell"
          : "Consul's check will tell";
      d.log(`registered ${s.name} for ${step.name} on port ${step.port}: ${how}`);
      if (step.runner === "fleet") d.state.setFleetService(step.name, step.stack, step.serviceId, step.hash);
      else d.state.setServiceId(step.name, step.serviceId);
      return;
    }
    case "remove-archive":
      // before a deploy of the stack is confirmed, the original Houston's files go back as they were
      removeArchive(step.sha, d.root, d.state, await originalFiles(d, step.stack));
      d.log(`removed archive ${step.sha.slice(0, 12)} of ${step.stack}`);
      return;
    default: {
      // a new step kind must be carried out here: this stops it compiling until it is
      const unhandled: never = step;
      throw new Error(`no handler for step ${JSON.stringify(unhandled)}`);
    }
  }
}

/** A unit's port drop-in and its `<unit>.d` directory (left if anything else is in it). */
function removeDropIn(unitDir: string, name: string): void {
  const why = removeSafely(unitDir, `${name}.d/${PORT_DROP_IN}`, "file") ?? removeSafely(unitDir, `${name}.d`, "dir");
  if (why) throw new UnitRefusedError(why);
}

/** Consul's timeout for a service's HTTP check, and the agent's for its own first one */
const CHECK_TIMEOUT_MS = 2000;

function ownAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address)));
}
