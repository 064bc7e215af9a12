import { describe, expect, it } from "vitest";
import { ConfigError } from "../../shared/errors.js";
import { batchWindow, deploymentWindows, unitWindow, type WindowOptions } from "../../controller/plan/watch-window.js";

const DEFAULTS: WindowOptions = { flag: null, environment: null, delaySeconds: 5, confirmedUnit: null };
const svc = (service: string, extra = "") => ({
  name: "a@1.service",
  text: `[Unit]\nDescription=a\n\n[Service]\n${service}\n${extra}`,
});

describe("unitWindow: how long a unit is watched once active, and why", () => {
  const cases: [string, { name: string; text: string }, Partial<WindowOptions>, string][] = [
    ["Type=simple (the default): --delay", svc("ExecStart=/bin/x"), {}, "5s: Type=simple, no readiness"],
    ["Type=exec proves nothing either", svc("Type=exec\nExecStart=/bin/x"), {}, "5s: Type=exec, no readiness"],
    ["-d 2 is the default window", svc("ExecStart=/bin/x"), { delaySeconds: 2 }, "2s: Type=simple, no readiness"],
    ["Type=notify: ready by READY=1", svc("Type=notify\nExecStart=/bin/x"), {}, "0s: Type=notify"],
    ["Type=oneshot: done when it finished", svc("Type=oneshot\nExecStart=/bin/x"), {}, "0s: Type=oneshot"],
    ["no ExecStart: oneshot", svc("RemainAfterExit=yes"), {}, "0s: Type=oneshot"],
    ["Type=forking", svc("Type=forking\nExecStart=/bin/x"), {}, "0s: Type=forking"],
    ["Type=dbus", svc("Type=dbus\nBusName=a.b\nExecStart=/bin/x"), {}, "0s: Type=dbus"],
    ["the last Type= wins", svc("Type=notify\nType=simple\nExecStart=/bin/x"), {}, "5s: Type=simple, no readiness"],
    [
      "a service confirmed by its HTTP check",
      svc("ExecStart=/bin/x"),
      { confirmedUnit: "a@1.service" },
      "0s: its service's HTTP check must pass",
    ],
    [
      "the environment's min-healthy replaces --delay",
      svc("ExecStart=/bin/x"),
      { environment: 10 },
      "10s: Type=simple, no readiness; the environment's min-healthy",
    ],
    ["…but not readiness", svc("Type=notify\nExecStart=/bin/x"), { environment: 10 }, "0s: Type=notify"],
    [
      "the unit's MinHealthy= wins over readiness and environment",
      svc("Type=notify\nExecStart=/bin/x", "[X-Houston]\nMinHealthy=30"),
      { environment: 10 },
      "30s: [X-Houston] MinHealthy=",
    ],
    [
      "MinHealthy=0 explicitly",
      svc("ExecStart=/bin/x", "[X-Houston]\nMinHealthy=0"),
      {},
      "0s: [X-Houston] MinHealthy=",
    ],
    ["MinHealthy=12s", svc("ExecStart=/bin/x", "[X-Houston]\nMinHealthy=12s"), {}, "12s: [X-Houston] MinHealthy="],
    [
      "--min-healthy overrides everything",
      svc("Type=notify\nExecStart=/bin/x", "[X-Houston]\nMinHealthy=30"),
      { flag: 0 },
      "0s: --min-healthy",
    ],
    [
      "a socket unit runs nothing to watch",
      { name: "a.socket", text: "[Socket]\nListenStream=80\n" },
      {},
      "0s: not a service (nothing runs to watch)",
    ],
  ];
  for (const [title, unit, o, want] of cases)
    it(title, () => {
      const w = unitWindow(unit, { ...DEFAULTS, ...o });
      expect(w.why).toBe(want);
      expect(w.seconds).toBe(Number(want.split("s:")[0]));
    });
  it("a bad MinHealthy= is an error naming the unit, line and value", () => {
    const bad = svc("ExecStart=/bin/x", "[X-Houston]\nMinHealthy=soon");
    expect(() => unitWindow(bad, DEFAULTS)).toThrow(ConfigError);
    expect(() => unitWindow(bad, DEFAULTS)).toThrow(
      /^unit a@1\.service:7: \[X-Houston\] MinHealthy=soon: expected whole seconds from 0 to 86400/,
    );
  });
});

describe("batchWindow: the units of a batch overlap", () => {
  it("the longest, not the sum", () => {
    const w = (unit: string, seconds: number) => ({ unit, seconds, why: `${seconds}s` });
    expect(batchWindow([w("a", 5), w("b", 0), w("c", 5)])).toEqual({ seconds: 5, units: ["a", "c"] });
    expect(batchWindow([w("a", 0)])).toEqual({ seconds: 0, units: [] });
    expect(batchWindow([])).toEqual({ seconds: 0, units: [] });
  });
});

describe("deploymentWindows: a service deployment's HTTP check is its readiness", () => {
  const service = {
    ...svc("ExecStart=/bin/x"),
    role: "service" as const,
    service: { name: "a", port: 80, interval: "2s" },
  };
  const dep = { name: "b@1.service", text: "[Service]\nExecStart=/bin/y\n", role: "dependency" as const };
  const o = { flag: null, environment: null, delaySeconds: 5, skipConsul: false };
  it("the service unit is confirmed by its check; its dependency is watched", () =>
    expect(deploymentWindows([service, dep], "service", o).map((w) => w.why)).toEqual([
      "0s: its service's HTTP check must pass",
      "5s: Type=simple, no readiness",
    ]));
  it("--skip-consul: nothing confirms it", () =>
    expect(deploymentWindows([service], "service", { ...o, skipConsul: true })[0]?.why).toBe(
      "5s: Type=simple, no readiness",
    ));
  it("a standalone unit with a service declaration is not confirmed in Consul by a rollout", () =>
    expect(deploymentWindows([service], "standalone", o)[0]?.why).toBe("5s: Type=simple, no readiness"));
});
