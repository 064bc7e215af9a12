/** Publishing hand-made deployments into a fleet's KV, and waiting on what agents report. */
import type { FileEntry } from "../../controller/plan/inputs.js";
import { planDeployment, type DeploymentRequest, type PlanInputUnit } from "../../controller/plan/plan-deployment.js";
import { readSpec, writeSpec } from "../../shared/stores/specs.js";
import { uploadArchive } from "../../shared/archive-store.js";
import type { Consul } from "../../shared/consul.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import type { SpecSigner } from "../../shared/signing.js";
import { StatusReportSchema, decodeJson, type StackSpec, type StatusReport, type UnitSpec } from "../../shared/spec.js";

/** A unit; without an [X-Fleet] section of its own it is global (every host runs it, no scheduler involved). */
export const unitText = (exec: string, extra = "") =>
  `[Unit]\nDescription=test unit\n\n[Service]\n${exec}\n${extra.includes("[X-Fleet]") ? extra : `${extra}\n[X-Fleet]\nGlobal=true\n`}`;
export const dep = (name: string, version: string, text: string): PlanInputUnit => ({
  name,
  version,
  role: "dependency",
  template: { text, source: `test:${name}` },
});
export const file = (path: string, content: string, mode = 0o644): FileEntry => ({
  path,
  content: Buffer.from(content),
  mode,
  owner: "root",
  group: "root",
});

/** Plans a standalone stack from inline units/files and returns its units (archives uploaded). */
export async function planUnits(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  units: PlanInputUnit[],
  files: FileEntry[] = [],
): Promise<UnitSpec[]> {
  const req: DeploymentRequest = {
    environment: "test",
    type: "standalone",
    name: stack,
    version: null,
    group: null,
    dependencies: true,
  };
  const plan = planDeployment({ variables: {}, units, files, filesSource: "test" }, req);
  for (const a of plan.archives) await uploadArchive(consul, kv, a);
  return plan.units;
}

/** Writes a spec of exactly these units as the stack's next generation; returns the generation. */
export async function publish(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  units: UnitSpec[],
  signer: SpecSigner | null = null,
): Promise<number> {
  const { spec, modifyIndex } = await readSpec(consul, kv, stack);
  const next: StackSpec = {
    schema: 1,
    stack,
    generation: (spec?.generation ?? 0) + 1,
    environment: "test",
    createdAt: new Date().toISOString(),
    deployment: { type: "standalone", name: stack, version: null, group: null },
    units,
  };
  await writeSpec(consul, kv, next, { modifyIndex, signer });
  return next.generation;
}

export async function report(consul: Consul, kv: KvLayout, node: string, stack: string): Promise<StatusReport | null> {
  const key = kv.stackStatus(node, stack);
  const e = await consul.kvGet(key);
  return e ? decodeJson(StatusReportSchema, key, e.value) : null;
}

export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The report once it shows `generation` applied (and every listed unit in the wanted state). */
export function reportAt(
  consul: Consul,
  kv: KvLayout,
  node: string,
  stack: string,
  generation: number,
  states: Record<string, string> = {},
): Promise<StatusReport> {
  return eventually(`${node} to report ${stack} generation ${generation} ${JSON.stringify(states)}`, async () => {
    const r = await report(consul, kv, node, stack);
    if (!r || r.generation !== generation || r.converging) return null;
    for (const [unit, state] of Object.entries(states))
      if (r.units.find((u) => u.name === unit)?.activeState !== state) return null;
    return r;
  });
}

/** A status report of `stack` from `node`, generation 1 applied, nothing in it unless `extra` says. */
export const statusReport = (node: string, stack: string, extra: Partial<StatusReport> = {}): StatusReport => ({
  schema: 1,
  node,
  stack,
  generation: 1,
  desiredGeneration: 1,
  converging: false,
  units: [],
  archives: [],
  errors: [],
  updatedAt: "2026-01-01T00:00:00Z",
  ...extra,
});
