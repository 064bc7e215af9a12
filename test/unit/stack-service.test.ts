import { describe, expect, it } from "vitest";
import { serviceChanges, stackService, strays, unitCheck, type Registered } from "../../agent/stack-service.js";

const report = (
  units: { name: string; activeState: string; subState?: string; result?: string; log?: string[] }[],
  errors: string[] = [],
  generation = 3,
) => ({
  stack: "web",
  generation,
  desiredGeneration: generation,
  errors,
  units: units.map((u) => ({ subState: u.activeState, ...u })),
});

describe("stackService", () => {
  it("one check per unit mirroring systemd; failed units carry their Result and log", () => {
    const s = stackService(
      report([
        { name: "web@2.service", activeState: "active" },
        { name: "web-db@1.service", activeState: "activating", subState: "start" },
        {
          name: "web-job@1.service",
          activeState: "failed",
          result: "exit-code",
          log: ["Traceback (most recent call last):", "boom"],
        },
      ]),
      "2",
    );
    expect(s).toMatchObject({ id: "houston-stack:web", name: "houston-web", tags: ["version:2", "generation:3"] });
    // standalone and global stacks have no one version: no version tag (it said version:none)
    expect(stackService(report([{ name: "lone-a@4.service", activeState: "active" }]), null).tags).toEqual([
      "generation:3",
    ]);
    expect(s.checks.map((c) => `${c.unit}=${c.status}`)).toEqual([
      "web@2.service=passing",
      "web-db@1.service=warning",
      "web-job@1.service=critical",
    ]);
    expect(s.checks[2]?.output).toBe(
      "web-job@1.service: ActiveState=failed SubState=failed Result=exit-code\nTraceback (most recent call last):\nboom",
    );
  });
  it("the agent's errors for the stack are a critical check of their own", () => {
    expect(stackService(report([], ["not applying houston/stacks/web/spec: unsigned"]), null).checks).toEqual([
      {
        id: "houston-stack:web:errors",
        unit: "(agent)",
        status: "critical",
        output: "not applying houston/stacks/web/spec: unsigned",
      },
    ]);
  });
  it("a stack named agent does not become the agent's own service", () => {
    expect(stackService({ ...report([]), stack: "agent" }, null).name).toBe("houston-stack-agent");
  });
});

describe("serviceChanges", () => {
  const a = stackService(report([{ name: "web@2.service", activeState: "activating" }]), "2");
  const b = stackService(report([{ name: "web@2.service", activeState: "active" }]), "2");
  const c = stackService(
    report([
      { name: "web@2.service", activeState: "active" },
      { name: "web@3.service", activeState: "activating" },
    ]),
    "3",
  );
  it("first time: register, then set every check", () =>
    expect(serviceChanges(null, a)).toMatchObject({ register: a, update: a.checks }));
  it("a state change: only that check is updated", () =>
    expect(serviceChanges(a, b)).toEqual({ register: null, update: b.checks, deregister: null, dropChecks: [] }));
  it("nothing changed: nothing sent", () =>
    expect(serviceChanges(b, b)).toEqual({ register: null, update: [], deregister: null, dropChecks: [] }));
  it("new units or tags: registered again; only the new or changed checks are set", () => {
    const change = serviceChanges(b, c);
    expect(change.register).toBe(c);
    // Consul keeps an unchanged check's status and output when the service is registered again
    expect(change.update.map((u) => u.unit)).toEqual(["web@3.service"]);
    // a unit that left takes its check along (explicitly, whatever Consul does with a re-registration)
    const fewer = serviceChanges(c, b);
    expect(fewer).toEqual({
      register: b,
      update: [],
      deregister: null,
      dropChecks: ["houston-unit:web:web@3.service"],
    });
  });
  it("stack gone: deregistered", () =>
    expect(serviceChanges(b, null)).toEqual({
      register: null,
      update: [],
      deregister: "houston-stack:web",
      dropChecks: [],
    }));
});

describe("strays", () => {
  const web = stackService(report([{ name: "web@3.service", activeState: "active" }]), "3");
  const stack = (id: string) => ({ id, meta: { houston_stack: id.split(":")[1]!, houston_node: "h1" } });
  const unitService = (unit: string) => ({ id: `houston:${unit}`, meta: { houston_unit: unit, houston_stack: "web" } });
  const registered: Registered = {
    services: [
      stack("houston-stack:web"),
      stack("houston-stack:gone"),
      unitService("web@3.service"),
      unitService("web@1.service"),
      { id: "houston-agent", meta: { houston_node: "h1" } },
      // another tool's services, even with Houston-looking IDs, are never touched
      { id: "houston-stack:theirs", meta: {} },
      { id: "houston:theirs", meta: { owner: "ops" } },
      { id: "redis", meta: {} },
    ],
    checks: [
      { id: "houston-unit:web:web@3.service", serviceId: "houston-stack:web" },
      { id: "houston-unit:web:web@1.service", serviceId: "houston-stack:web" },
      { id: "houston-unit:gone:x@1.service", serviceId: "houston-stack:gone" },
      { id: "service:houston-agent", serviceId: "houston-agent" },
      { id: "serfHealth", serviceId: "" },
      { id: "redis-extra", serviceId: "redis" },
    ],
  };
  it("drops Houston's stack services and checks that match nothing here, never others'", () =>
    expect(strays(registered, [web], null)).toEqual({
      services: ["houston-stack:gone"],
      checks: ["houston-unit:web:web@1.service"],
    }));
  it("declared services the agent does not know are dropped only when it says which it knows", () =>
    expect(strays(registered, [web], new Set(["houston:web@3.service"])).services).toEqual([
      "houston-stack:gone",
      "houston:web@1.service",
    ]));
  it("nothing wanted: every stack service of Houston's goes (its checks with it)", () =>
    expect(strays(registered, [], new Set())).toEqual({
      services: ["houston-stack:gone", "houston-stack:web", "houston:web@1.service", "houston:web@3.service"],
      checks: [],
    }));
});

describe("unitCheck", () => {
  it("a unit that replaced another here (stop then start) says so in the UI", () => {
    const c = unitCheck("s", {
      name: "s@2.service",
      activeState: "active",
      subState: "running",
      replaced: ["s@1.service"],
    });
    expect(c.output).toBe(
      "s@2.service: ActiveState=active SubState=running; replaced s@1.service on this host (stop, then start)",
    );
  });
});
