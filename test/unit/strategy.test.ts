/** The upgrade strategy of a unit, as a table: what it declares and what the backend can do → how a new version takes over. */
import { describe, expect, it } from "vitest";
import { upgradeOf, upgradeStrategy, type StrategyInput } from "../../controller/plan/strategy.js";
import { ConfigError } from "../../shared/errors.js";
import { parseUnitFile } from "../../shared/unit-file.js";
import { FLEET_UNIT_RULES } from "../../controller/scheduler/unit-rules.js";

const base: StrategyInput = {
  role: "service",
  port: null,
  socket: false,
  upgrade: null,
  refuseReplace: null,
  source: "units/web.service",
};

describe("upgradeStrategy", () => {
  const cases: {
    title: string;
    input: Partial<StrategyInput>;
    kind: string | null;
    reason?: RegExp;
    warns?: boolean;
  }[] = [
    {
      title: "a fixed port without Socket=: stop then start, one host at a time",
      input: { port: 8081 },
      kind: "replace",
      reason: /^fixed port 8081 and no Socket=: stop then start, one host at a time .*other hosts keep serving/,
    },
    {
      title: "Socket=: hand-over",
      input: { port: 8081, socket: true },
      kind: "socket",
      reason: /^Socket=: hand-over, zero downtime/,
    },
    { title: "no port: side by side", input: {}, kind: "side-by-side", reason: /^no port declared: side by side/ },
    {
      title: "Upgrade=replace without a port",
      input: { upgrade: "replace" },
      kind: "replace",
      reason: /^Upgrade=replace/,
    },
    {
      title: "Upgrade=side-by-side overrides a fixed port",
      input: { port: 8081, upgrade: "side-by-side" },
      kind: "side-by-side",
      reason: /^Upgrade=side-by-side/,
    },
    {
      title: "ServicePort=auto: each version its own port, side by side, found through Consul",
      input: { portRange: { from: 20000, to: 29999 } },
      kind: "dynamic-port",
      reason:
        /^ServicePort=auto \(20000-29999\): each version gets its own port, registered in Consul; old and new run side by side, clients find the new one through Consul$/,
    },
    {
      title: "Upgrade=replace overrides a port range",
      input: { portRange: { from: 20000, to: 20009 }, upgrade: "replace" },
      kind: "replace",
    },
    { title: "a dependency with a fixed port", input: { role: "dependency", port: 6379 }, kind: "replace" },
    { title: "the file unit is no version of anything", input: { role: "archive" }, kind: null },
    { title: "nor is the socket", input: { role: "socket" }, kind: null },
    {
      title: "fleet: a fixed port stays side by side, with a warning",
      input: { port: 8081, refuseReplace: FLEET_UNIT_RULES.refuseReplace },
      kind: "side-by-side",
      reason: /fleet starts the units itself/,
      warns: true,
    },
  ];
  for (const c of cases)
    it(c.title, () => {
      const s = upgradeStrategy({ ...base, ...c.input });
      expect(s?.kind ?? null).toBe(c.kind);
      if (c.reason) expect(s?.reason).toMatch(c.reason);
      expect(s?.warning != null).toBe(c.warns ?? false);
    });

  it("fleet refuses an explicit Upgrade=replace, naming the file", () => {
    expect(() =>
      upgradeStrategy({ ...base, upgrade: "replace", refuseReplace: FLEET_UNIT_RULES.refuseReplace }),
    ).toThrow(/units\/web.service: \[X-Houston\] Upgrade=replace: fleet starts the units itself/);
  });
});

describe("ServicePort=auto where it cannot work", () => {
  const auto = { ...base, portRange: { from: 20000, to: 29999 } };
  it("fleet refuses it, naming the file and why", () => {
    expect(() => upgradeStrategy({ ...auto, refuseDynamicPort: FLEET_UNIT_RULES.refuseDynamicPort })).toThrow(
      /units\/web.service: \[X-Houston\] ServicePort=20000-29999: needs the agents scheduler: fleet starts the units itself/,
    );
  });
  it("with Socket= it is refused: a socket hands every version one fixed port", () => {
    expect(() => upgradeStrategy({ ...auto, socket: true })).toThrow(/Socket= and ServicePort=20000-29999/);
  });
});

describe("upgradeOf", () => {
  const read = (text: string) => upgradeOf(parseUnitFile(text, "web.service"), "web.service");
  it("reads [X-Houston] Upgrade=", () => {
    expect(read("[Service]\nExecStart=/bin/true\n[X-Houston]\nUpgrade=replace\n")).toBe("replace");
    expect(read("[Service]\nExecStart=/bin/true\n")).toBeNull();
  });
  it("refuses another value, naming file and line", () => {
    expect(() => read("[Service]\nExecStart=/bin/true\n[X-Houston]\nUpgrade=rolling\n")).toThrow(ConfigError);
    expect(() => read("[Service]\nExecStart=/bin/true\n[X-Houston]\nUpgrade=rolling\n")).toThrow(
      /web.service:4.*expected replace or side-by-side/,
    );
  });
});
