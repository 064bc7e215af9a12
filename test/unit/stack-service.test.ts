import { describe, expect, it } from "vitest";
import { serviceChanges, stackService, unitCheck } from "../../agent/stack-service.js";

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
    expect(serviceChanges(a, b)).toEqual({ register: null, update: b.checks, deregister: null }));
  it("nothing changed: nothing sent", () =>
    expect(serviceChanges(b, b)).toEqual({ register: null, update: [], deregister: null }));
  it("new units or tags: registered again; only the new or changed checks are set", () => {
    const change = serviceChanges(b, c);
    expect(change.register).toBe(c);
    // Consul keeps an unchanged check's status and output when the service is registered again
    expect(change.update.map((u) => u.unit)).toEqual(["web@3.service"]);
    const fewer = serviceChanges(c, b);
    expect(fewer).toEqual({ register: b, update: [], deregister: null });
  });
  it("stack gone: deregistered", () =>
    expect(serviceChanges(b, null)).toEqual({ register: null, update: [], deregister: "houston-stack:web" }));
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
