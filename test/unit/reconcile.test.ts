import { describe, expect, it } from "vitest";
import {
  reconcileHost,
  withoutReplaced,
  type HostObservation,
  type HostPlan,
  type ObservedUnit,
} from "../../agent/reconcile.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { desiredForHost, hashText, type DesiredUnit, type HostDesired } from "../../agent/targeting.js";
import type { StackSpec, UnitSpec } from "../../shared/spec.js";

const want = (name: string, text = `text of ${name}`, extra: Partial<DesiredUnit> = {}): DesiredUnit => ({
  name,
  runner: "agent",
  stack: "s",
  role: "dependency",
  version: "1",
  group: null,
  text,
  hash: hashText(text),
  ...extra,
});
const has = (name: string, o: Partial<ObservedUnit> = {}): ObservedUnit => {
  const hash = hashText(`text of ${name}`);
  return { name, stack: "s", fileHash: hash, startedHash: hash, activeState: "active", serviceId: null, ...o };
};
const desired = (units: DesiredUnit[], archives: [string, string][] = []): HostDesired => ({
  units,
  archives: new Map(archives),
  generations: new Map([["s", 1]]),
  refused: new Map(),
});
const host = (owned: ObservedUnit[], o: Partial<HostObservation> = {}): HostObservation => ({
  owned,
  foreign: new Map(),
  archives: new Map(),
  registrationsStale: false,
  ...o,
});
/** the steps, then those that wait until the pass's report is out */
const kinds = (plan: HostPlan) => [
  ...plan.steps.map(stepText),
  ...plan.afterReport.map((s) => `after report: ${stepText(s)}`),
];
const stepText = (s: HostPlan["steps"][number]) =>
  "name" in s ? `${s.kind} ${s.name}` : "sha" in s ? `${s.kind} ${s.sha}` : s.kind;

describe("reconcileHost", () => {
  const cases: { title: string; current: HostObservation; desired: HostDesired; steps: string[] }[] = [
    {
      title: "nothing to do when the host matches",
      current: host([has("a@1.service")]),
      desired: desired([want("a@1.service")]),
      steps: [],
    },
    {
      title: "fresh host: archive, unit files, one reload, starts in spec order",
      current: host([]),
      desired: desired(
        [
          want("s-file-deploy@abc.service", "t", { role: "archive", archive: "abc" }),
          want("a@1.service"),
          want("s@2.service"),
        ],
        [["abc", "s"]],
      ),
      steps: [
        "install-archive abc",
        "write-unit s-file-deploy@abc.service",
        "write-unit a@1.service",
        "write-unit s@2.service",
        "reload",
        "start-unit s-file-deploy@abc.service",
        "start-unit a@1.service",
        "start-unit s@2.service",
      ],
    },
    {
      title: "new version added: old one stays untouched",
      current: host([has("a@1.service")]),
      desired: desired([want("a@1.service"), want("a@2.service")]),
      steps: ["write-unit a@2.service", "reload", "start-unit a@2.service"],
    },
    {
      title: "stop then start: the old version is deregistered, stopped and removed before the new one starts",
      current: host([has("s@1.service", { serviceId: "houston:s@1.service" })]),
      desired: desired([
        want("s@1.service"),
        want("s@2.service", undefined, { replaces: ["s@1.service"], role: "service" }),
      ]),
      steps: [
        "write-unit s@2.service",
        "deregister-service s@1.service",
        "stop-unit s@1.service",
        "remove-unit-file s@1.service",
        "reload",
        "start-unit s@2.service",
      ],
    },
    {
      title: "stop then start: where the replaced unit is not here, the new one just starts",
      current: host([]),
      desired: desired([want("s@2.service", undefined, { replaces: ["s@1.service"] })]),
      steps: ["write-unit s@2.service", "reload", "start-unit s@2.service"],
    },
    {
      title: "stop then start: another stack's unit of the same name is not replaced",
      current: host([has("s@1.service", { stack: "t" })]),
      desired: desired([
        want("s@1.service", undefined, { stack: "t" }),
        want("s@2.service", undefined, { replaces: ["s@1.service"] }),
      ]),
      steps: ["write-unit s@2.service", "reload", "start-unit s@2.service"],
    },
    {
      title: "restore after a failed replacement: the new one stopped and removed, the old one back",
      current: host([has("s@2.service", { activeState: "failed" })]),
      desired: desired([want("s@1.service")]),
      steps: [
        "write-unit s@1.service",
        "stop-unit s@2.service",
        "remove-unit-file s@2.service",
        "reload",
        "start-unit s@1.service",
      ],
    },
    {
      title:
        "restore after a failed deploy with new files: the old archive written again, and the dependency's old text (Requires= the old file unit) loaded before the new file unit stops, so the stop does not take it and its dependents along",
      current: host([has("s-file-deploy@new.service"), has("s-cache@1.service"), has("s@2.service")], {
        archives: new Map([
          ["old", "s"],
          ["new", "s"],
          ["other", "t"],
        ]),
      }),
      desired: desired(
        [
          want("s-file-deploy@old.service"),
          want("s-cache@1.service", "Requires=s-file-deploy@old.service"),
          want("s@2.service"),
        ],
        [
          ["old", "s"],
          ["other", "t"],
        ],
      ),
      // the new archive wrote the old one's paths: the old one is written again before the new one goes
      steps: [
        "install-archive old",
        "write-unit s-file-deploy@old.service",
        "write-unit s-cache@1.service",
        "reload",
        "stop-unit s-file-deploy@new.service",
        "remove-unit-file s-file-deploy@new.service",
        "start-unit s-file-deploy@old.service",
        "start-unit s-cache@1.service",
        "remove-archive new",
        "after report: reload",
      ],
    },
    {
      title: "spec drops units: deregister, stop in reverse order, remove files, reload, remove archive",
      current: host([has("a@1.service"), has("s@1.service", { serviceId: "houston:s@1.service" })], {
        archives: new Map([["abc", "s"]]),
      }),
      desired: { units: [], archives: new Map(), generations: new Map(), refused: new Map() },
      steps: [
        "deregister-service s@1.service",
        "stop-unit s@1.service",
        "stop-unit a@1.service",
        "remove-unit-file s@1.service",
        "remove-unit-file a@1.service",
        "remove-archive abc",
        "after report: reload",
      ],
    },
    {
      title: "a failed unit with unchanged content is not restarted",
      current: host([has("a@1.service", { activeState: "failed" })]),
      desired: desired([want("a@1.service")]),
      steps: [],
    },
    {
      title: "changed content of a running unit: rewrite and restart",
      current: host([has("a@1.service", { fileHash: "old", startedHash: "old" })]),
      desired: desired([want("a@1.service")]),
      steps: ["write-unit a@1.service", "reload", "start-unit a@1.service"],
    },
    {
      title: "crash after the file was written but before the start was recorded: start only",
      current: host([has("a@1.service", { startedHash: null, activeState: "inactive" })]),
      desired: desired([want("a@1.service")]),
      steps: ["start-unit a@1.service"],
    },
    {
      title: "unit file deleted behind Houston's back: written again",
      current: host([has("a@1.service", { fileHash: null })]),
      desired: desired([want("a@1.service")]),
      steps: ["write-unit a@1.service", "reload"],
    },
    {
      title: "a foreign unit file with a wanted name blocks that stack and is not touched",
      current: host([], {
        foreign: new Map([
          ["a@1.service", "unit file a@1.service exists and was not created by Houston; not touching it"],
        ]),
      }),
      desired: desired([want("a@1.service"), want("b@1.service")]),
      steps: ["blocked a@1.service"],
    },
    {
      title: "the owner keeps its unit while another stack asks for the same name",
      current: host([has("beat@1.service", { stack: "global" })]),
      desired: desired([
        want("beat@1.service", "text of beat@1.service", { stack: "global" }),
        want("beat@1.service", "evil", { stack: "global-beat" }),
      ]),
      steps: ["blocked beat@1.service"],
    },
    {
      title: "two new stacks wanting one name: the first (by stack order) gets it, the second is blocked",
      current: host([]),
      desired: desired([want("x-y@1.service", "a", { stack: "x" }), want("x-y@1.service", "b", { stack: "x-y" })]),
      steps: ["blocked x-y@1.service", "write-unit x-y@1.service", "reload", "start-unit x-y@1.service"],
    },
    {
      title: "a name systemd already loads from elsewhere (vendor template instance) blocks the stack",
      current: host([], {
        foreign: new Map([
          [
            "getty@tty1.service",
            "systemd already has getty@tty1.service (loaded from /lib/systemd/system/getty@.service)",
          ],
        ]),
      }),
      desired: desired([want("getty@tty1.service")]),
      steps: ["blocked getty@tty1.service"],
    },
    {
      title: "a service declaration is registered after the start",
      current: host([]),
      desired: desired([
        want("s@2.service", "t", { role: "service", version: "2", service: { name: "s", port: 80, interval: "2s" } }),
      ]),
      steps: ["write-unit s@2.service", "reload", "start-unit s@2.service", "register-service s@2.service"],
    },
    {
      title: "a registered, started service is left alone",
      current: host([has("s@2.service", { serviceId: "houston:s@2.service" })]),
      desired: desired([
        want("s@2.service", "text of s@2.service", {
          role: "service",
          version: "2",
          service: { name: "s", port: 80, interval: "2s" },
        }),
      ]),
      steps: [],
    },
    {
      title: "after a Consul outage services are registered again (the local agent may have lost them)",
      current: host([has("s@2.service", { serviceId: "houston:s@2.service" })], { registrationsStale: true }),
      desired: desired([
        want("s@2.service", "text of s@2.service", {
          role: "service",
          version: "2",
          service: { name: "s", port: 80, interval: "2s" },
        }),
      ]),
      steps: ["register-service s@2.service"],
    },
    {
      title: "a unit fleet runs here: its service is registered, nothing written, started or blocked",
      current: host([], { foreign: new Map([["f@1.service", "unit file f@1.service exists"]]) }),
      desired: desired([
        want("f@1.service", "t", {
          runner: "fleet",
          role: "service",
          service: { name: "f", port: 80, interval: "2s" },
        }),
      ]),
      steps: ["register-service f@1.service"],
    },
    {
      title: "fleet moved a unit away: its service is deregistered, the unit is not stopped here",
      current: host([], {
        fleetServices: new Map([["f@1.service", { stack: "s", serviceId: "houston:f@1.service", hash: "h" }]]),
      }),
      desired: desired([]),
      steps: ["deregister-service f@1.service"],
    },
  ];
  for (const c of cases) it(c.title, () => expect(kinds(reconcileHost(c.current, c.desired))).toEqual(c.steps));

  it("a pass that only adds unit files says which: the reload is skipped if systemd loaded them itself", () => {
    const reload = (current: HostObservation, d: HostDesired) => {
      const plan = reconcileHost(current, d);
      const later = plan.afterReport.find((s) => s.kind === "reload");
      return plan.steps.find((s) => s.kind === "reload") ?? (later && { ...later, afterReport: true });
    };
    expect(reload(host([has("a@1.service")]), desired([want("a@1.service"), want("b@1.service")]))).toEqual({
      kind: "reload",
      added: ["b@1.service"],
    });
    // a changed file, a file gone from disk, a unit removed: systemd must read its files again
    expect(reload(host([has("a@1.service")]), desired([want("a@1.service", "new text")]))).toEqual({ kind: "reload" });
    expect(reload(host([has("a@1.service", { fileHash: null })]), desired([want("a@1.service")]))).toEqual({
      kind: "reload",
    });
    expect(reload(host([has("a@1.service")]), desired([want("b@1.service")]))).toEqual({ kind: "reload" });
    // a removal whose reload never ran (the agent stopped first): reloaded now, and no skipping
    expect(reload(host([has("a@1.service")], { reloadPending: true }), desired([want("a@1.service")]))).toEqual({
      kind: "reload",
      afterReport: true,
    });
    expect(
      reload(host([has("a@1.service")], { reloadPending: true }), desired([want("a@1.service"), want("b@1.service")])),
    ).toEqual({ kind: "reload" });
    // only removals: nothing in the pass needs the reload, so it may wait for the report
    expect(reload(host([has("a@1.service"), has("b@1.service")]), desired([want("a@1.service")]))).toEqual({
      kind: "reload",
      afterReport: true,
    });
  });

  it("registers a restarted unit's service afresh: the old process's check status does not carry over", () => {
    const svc = { role: "service" as const, version: "2", service: { name: "s", port: 80, interval: "2s" } };
    const reg = (current: HostObservation, text = "text of s@2.service") =>
      reconcileHost(current, desired([want("s@2.service", text, svc)])).steps.find(
        (s) => s.kind === "register-service",
      );
    const registered = has("s@2.service", { serviceId: "houston:s@2.service" });
    expect(reg(host([registered]), "new text")).toMatchObject({ resetCheck: true });
    // never registered, or registered again after an outage for the same process: nothing to reset
    expect(reg(host([]))).not.toHaveProperty("resetCheck");
    expect(reg(host([registered], { registrationsStale: true }))).not.toHaveProperty("resetCheck");
  });

  it("an older version running on the same port: the agent does not look first (either could answer)", () => {
    const svc = (port: number) => ({ role: "service" as const, service: { name: "s", port, interval: "2s" } });
    const step = (oldState: string, oldPort: number) =>
      reconcileHost(
        host([has("s@1.service", { activeState: oldState, serviceId: "houston:s@1.service" })]),
        desired([want("s@1.service", "text of s@1.service", svc(oldPort)), want("s@2.service", "v2", svc(80))]),
      ).steps.find((s) => s.kind === "register-service" && s.name === "s@2.service");
    expect(step("active", 80)).toMatchObject({ sharedPort: true });
    expect(step("failed", 80)).not.toHaveProperty("sharedPort");
    expect(step("active", 81)).not.toHaveProperty("sharedPort");
  });

  it("registers a service fleet runs afresh when fleet has new content for its unit", () => {
    const fleetUnit = {
      ...want("f@1.service", "v2", {
        runner: "fleet",
        role: "service",
        service: { name: "s", port: 80, interval: "2s" },
      }),
    };
    const fleetDesired: HostDesired = desired([fleetUnit]);
    const registered = (hash: string): HostObservation =>
      host([], { fleetServices: new Map([["f@1.service", { stack: "s", serviceId: "houston:f@1.service", hash }]]) });
    const step = (o: HostObservation) =>
      reconcileHost(o, fleetDesired).steps.find((s) => s.kind === "register-service");
    expect(step(registered(hashText("v1")))).toMatchObject({ resetCheck: true, runner: "fleet", hash: hashText("v2") });
    expect(step(registered(fleetUnit.hash))).toBeUndefined();
    expect(step(host([]))).not.toHaveProperty("resetCheck");
  });

  it("marks restarts only for units that were running with other content", () => {
    const { steps } = reconcileHost(
      host([has("a@1.service", { fileHash: "old", startedHash: "old" })]),
      desired([want("a@1.service")]),
    );
    expect(steps.find((s) => s.kind === "start-unit")).toMatchObject({ restart: true });
    const fresh = reconcileHost(host([]), desired([want("a@1.service")])).steps;
    expect(fresh.find((s) => s.kind === "start-unit")).toMatchObject({ restart: false });
  });
});

describe("desiredForHost (targeting)", () => {
  const unit = (
    name: string,
    placements: UnitSpec["placements"],
    text = `[Unit]\nDescription=${name}\n\n[Service]\nExecStart=/bin/true\n`,
  ): UnitSpec => ({
    name,
    stack: "s",
    component: name.split("@")[0] ?? null,
    group: null,
    version: "1",
    role: "dependency",
    text,
    placements,
  });
  const spec = (units: UnitSpec[], stack = "s"): StackSpec => ({
    schema: 1,
    stack,
    generation: 4,
    environment: "e",
    createdAt: "",
    deployment: { type: "standalone", name: stack, version: null, group: null },
    units: units.map((u) => ({ ...u, stack })),
  });
  const everywhere = [{ global: false, metadata: {} }];
  /** the scheduler's placements: every non-global unit on `node` */
  const placedOn = (specs: StackSpec[], node = "h1"): Map<string, PlacementDoc> =>
    new Map(
      specs.map((s) => [
        s.stack,
        {
          schema: 1 as const,
          stack: s.stack,
          generation: s.generation,
          units: Object.fromEntries(s.units.map((u) => [u.name, [node]])),
          unplaced: {},
          moves: [],
          scheduler: "h9",
          updatedAt: "",
        },
      ]),
    );
  const names = (specs: StackSpec[], meta: Record<string, string>, placed = placedOn(specs)) =>
    desiredForHost(specs, placed, "h1", meta).units.map((u) => u.name);

  const cases: { title: string; placements: UnitSpec["placements"]; meta: Record<string, string>; here: boolean }[] = [
    { title: "placed here, no metadata asked", placements: everywhere, meta: {}, here: true },
    {
      title: "Global=true: every host",
      placements: [{ global: true, metadata: {} }],
      meta: { role: "db" },
      here: true,
    },
    {
      title: "one key matches",
      placements: [{ global: false, metadata: { role: ["web"] } }],
      meta: { role: "web" },
      here: true,
    },
    {
      title: "one key, any of several values",
      placements: [{ global: false, metadata: { role: ["web", "api"] } }],
      meta: { role: "api" },
      here: true,
    },
    {
      title: "value differs",
      placements: [{ global: false, metadata: { role: ["web"] } }],
      meta: { role: "db" },
      here: false,
    },
    {
      title: "key missing on the host",
      placements: [{ global: false, metadata: { role: ["web"] } }],
      meta: {},
      here: false,
    },
    {
      title: "all keys must match",
      placements: [{ global: false, metadata: { role: ["web"], disk: ["ssd"] } }],
      meta: { role: "web", disk: "hdd" },
      here: false,
    },
    {
      title: "Global with metadata: every matching host",
      placements: [{ global: true, metadata: { role: ["web"] } }],
      meta: { role: "db" },
      here: false,
    },
    {
      title: "placed here, but MachineID= pins another machine (a placement cannot override the spec)",
      placements: [{ global: false, metadata: {}, machineId: "h2" }],
      meta: {},
      here: false,
    },
    {
      title: "placed here and pinned here by MachineID=",
      placements: [{ global: false, metadata: {}, machineId: "h1" }],
      meta: {},
      here: true,
    },
    {
      title: "archive placements are any-of",
      placements: [
        { global: false, metadata: { role: ["web"] } },
        { global: false, metadata: { role: ["db"] } },
      ],
      meta: { role: "db" },
      here: true,
    },
  ];
  for (const c of cases)
    it(c.title, () =>
      expect(names([spec([unit("a@1.service", c.placements)])], c.meta)).toEqual(c.here ? ["a@1.service"] : []),
    );

  it("a non-global unit runs only where the scheduler placed it; global units need no placement", () => {
    const specs = [spec([unit("a@1.service", everywhere), unit("g@1.service", [{ global: true, metadata: {} }])])];
    expect(names(specs, {}, placedOn(specs, "h2"))).toEqual(["g@1.service"]);
    expect(names(specs, {}, new Map())).toEqual(["g@1.service"]);
    expect(names(specs, {}, placedOn(specs, "h1"))).toEqual(["a@1.service", "g@1.service"]);
  });

  it("an archive comes with its deployment's units, a socket with its service (not placed by the scheduler)", () => {
    const archive = { ...unit("f@abc.service", everywhere), role: "archive" as const, archive: "a".repeat(64) };
    const socket = { ...unit("s.socket", everywhere), role: "socket" as const };
    const svc = { ...unit("s@1.service", everywhere), role: "service" as const };
    const dep1 = unit("d@1.service", everywhere);
    const specs = [spec([socket, archive, dep1, svc])];
    const only = (name: string, node: string): Map<string, PlacementDoc> => {
      const doc = placedOn(specs, node).get("s")!;
      return new Map([["s", { ...doc, units: { [name]: [node] } }]]);
    };
    expect(names(specs, {}, only("d@1.service", "h1"))).toEqual(["f@abc.service", "d@1.service"]);
    expect(names(specs, {}, only("s@1.service", "h1"))).toEqual(["s.socket", "f@abc.service", "s@1.service"]);
    expect(names(specs, {}, only("s@1.service", "h2"))).toEqual([]);
  });

  it("a host allowlist (canary, batches) narrows placement", () => {
    const pinned = { ...unit("a@1.service", everywhere), hosts: ["h2"] };
    expect(desiredForHost([spec([pinned])], placedOn([spec([pinned])], "h1"), "h1", {}).units).toEqual([]);
    expect(
      desiredForHost([spec([pinned])], placedOn([spec([pinned])], "h2"), "h2", {}).units.map((u) => u.name),
    ).toEqual(["a@1.service"]);
  });

  it("drops dependencies on units of the stack placed elsewhere", () => {
    const web = [{ global: false, metadata: { role: ["web"] } }];
    const db = [{ global: false, metadata: { role: ["db"] } }];
    const app = unit(
      "app@1.service",
      web,
      "[Unit]\nDescription=app\nRequires=db@1.service\nAfter=db@1.service network.target\n\n[Service]\nExecStart=/bin/true\n",
    );
    const specs = [spec([unit("db@1.service", db), app])];
    const [u] = desiredForHost(specs, placedOn(specs), "h1", { role: "web" }).units;
    expect(u?.text).toContain("After=network.target");
    expect(u?.text).not.toContain("db@1.service");
    expect(u?.hash).toBe(hashText(u?.text ?? ""));
  });

  it("keeps stacks apart and in order, with their generations and archives", () => {
    const specs = [
      spec([unit("b@1.service", everywhere)], "zeta"),
      spec(
        [
          { ...unit("f@abc.service", everywhere), role: "archive", archive: "a".repeat(64) },
          unit("c@1.service", everywhere),
        ],
        "alpha",
      ),
    ];
    const d = desiredForHost(specs, placedOn(specs), "h1", {});
    expect(d.units.map((u) => u.stack)).toEqual(["alpha", "alpha", "zeta"]);
    expect([...d.archives]).toEqual([["a".repeat(64), "alpha"]]);
    expect([...d.generations]).toEqual([
      ["alpha", 4],
      ["zeta", 4],
    ]);
  });
});

describe("withoutReplaced (stop then start)", () => {
  it("drops the replaced units wanted here and says on the replacement which it replaced here", () => {
    const d = withoutReplaced(
      desired([want("s@1.service"), want("s@2.service", undefined, { replaces: ["s@1.service", "s@0.service"] })]),
    );
    expect(d.units.map((u) => [u.name, u.replacing ?? []])).toEqual([["s@2.service", ["s@1.service"]]]);
  });
  it("a fleet-run unit replaces nothing (fleet starts its units itself)", () => {
    const d = withoutReplaced(
      desired([
        want("s@1.service", undefined, { runner: "fleet" }),
        want("s@2.service", undefined, { runner: "fleet", replaces: ["s@1.service"] }),
      ]),
    );
    expect(d.units.map((u) => u.name)).toEqual(["s@1.service", "s@2.service"]);
  });
});
