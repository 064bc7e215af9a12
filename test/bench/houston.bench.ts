/**
 * Speed goals live here, not in timed tests. Goals: plan a 50-unit stack in well under 10 ms;
 * build a 20 MB archive in under 1 s; reconcile 500 units in under 10 ms; agent bundle cold
 * start (load + parse + config) under 300 ms.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { bench, describe } from "vitest";
import { reconcileHost } from "../../agent/reconcile.js";
import { desiredForHost } from "../../agent/targeting.js";
import { schedule } from "../../shared/schedule.js";
import { buildArchive } from "../../controller/plan/archive.js";
import { planDeployment, type PlanInputUnit } from "../../controller/plan/plan-deployment.js";
import type { StackSpec } from "../../shared/spec.js";

const text =
  "[Unit]\nDescription=x\nAfter=dep0.service\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nMachineMetadata=role=web\n";
const units: PlanInputUnit[] = Array.from({ length: 49 }, (_, i) => ({
  name: `dep${i}`,
  version: "1",
  role: "dependency",
  template: { text, source: "b" },
}));
units.push({ name: "svc", version: "1", role: "service", template: { text, source: "b" } });
const blob = randomBytes(20 * 1024 * 1024);

describe("controller", () => {
  bench("plan a 50-unit service deployment", () => {
    planDeployment(
      { variables: {}, units, files: [], filesSource: "b" },
      { environment: "e", type: "service", name: "s", version: "1", group: null, dependencies: true },
    );
  });
  bench(
    "build a 20 MB archive (tar + sha256)",
    () => {
      buildArchive([{ path: "/srv/blob", content: blob, mode: 0o644, owner: "root", group: "root" }]);
    },
    { iterations: 5 },
  );
});

describe("agent", () => {
  const plan = planDeployment(
    {
      variables: {},
      units: [...units, ...units.map((u) => ({ ...u, version: "2" }))].slice(0, 99),
      files: [],
      filesSource: "b",
    },
    { environment: "e", type: "standalone", name: "s", version: null, group: null, dependencies: true },
  );
  const specs: StackSpec[] = Array.from({ length: 5 }, (_, i) => ({
    schema: 1,
    stack: `s${i}`,
    generation: 1,
    environment: "e",
    createdAt: "",
    deployment: plan.deployment,
    units: plan.units,
  }));
  const machines = Array.from({ length: 100 }, (_, i) => ({
    node: `h${i + 1}`,
    meta: { role: "web" },
    state: "up" as const,
  }));
  const placements = schedule({ specs, machines, previous: new Map(), scheduler: "h1", now: "" });
  bench("schedule 500 units over 100 machines", () => {
    schedule({ specs, machines, previous: placements, scheduler: "h1", now: "" });
  });
  bench("target + reconcile 500 units against an empty host", () => {
    const desired = desiredForHost(specs, placements, "h1", { role: "web" });
    reconcileHost({ owned: [], foreign: new Map(), archives: new Map(), registrationsStale: false }, desired);
  });
  bench(
    "agent bundle cold start (node + bundle load, --help)",
    () => {
      execFileSync(process.execPath, [join(import.meta.dirname, "..", "..", "dist", "houston-agent.js"), "--help"], {
        stdio: "ignore",
      });
    },
    { iterations: 5 },
  );
});
