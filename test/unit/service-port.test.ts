/**
 * [X-Houston] ServicePort=auto and ranges, end to end in pure code: what the planner reads (bad
 * values name source:line), what the spec schema lets an agent accept, how an agent chooses a
 * version's port on its host (stable, never shared, probed), and what its reconciler writes and
 * registers with it (a drop-in beside the signed unit text; the check follows the port).
 */
import { describe, expect, it } from "vitest";
import { planDeployment, type DeploymentRequest, type PlanInputUnit } from "../../controller/plan/plan-deployment.js";
import { servicePortOf } from "../../controller/plan/render-unit.js";
import { FLEET_UNIT_RULES } from "../../controller/scheduler/unit-rules.js";
import { assignPorts, dropInText, portCandidates } from "../../agent/ports.js";
import { reconcileHost, type ObservedUnit } from "../../agent/reconcile.js";
import { AgentState } from "../../agent/state.js";
import { hashText, type DesiredUnit, type HostDesired } from "../../agent/targeting.js";
import { AUTO_PORT_RANGE, ServiceDeclSchema, checkUrlOf, StackSpecSchema } from "../../shared/spec.js";

const SOURCE = "units/service/web.service";
const svc = (xHouston: string): PlanInputUnit => ({
  name: "web",
  version: "1",
  role: "service",
  template: { text: `[Service]\nExecStart=/bin/true\n\n[X-Houston]\n${xHouston}`, source: SOURCE },
});
const req: DeploymentRequest = {
  environment: "test",
  type: "service",
  name: "web",
  version: "1",
  group: null,
  dependencies: true,
};
const plan = (xHouston: string, rules?: typeof FLEET_UNIT_RULES) =>
  planDeployment({ variables: {}, units: [svc(xHouston)], files: [], filesSource: "" }, req, rules);

describe("ServicePort= values", () => {
  const cases: [string, ReturnType<typeof servicePortOf>][] = [
    ["8080", { port: 8080 }],
    ["auto", { portRange: { ...AUTO_PORT_RANGE } }],
    ["20000-20999", { portRange: { from: 20000, to: 20999 } }],
    ["30000-30000", { portRange: { from: 30000, to: 30000 } }],
    ["0", "a port is a number from 1 to 65535"],
    ["70000", "a port is a number from 1 to 65535"],
    ["20999-20000", "the range runs from low to high (20000-20999)"],
    ["1-70000", "a port is a number from 1 to 65535"],
    ["http", "expected a port (8080), auto, or a range (20000-20999)"],
    ["Auto", "expected a port (8080), auto, or a range (20000-20999)"],
    ["20000 - 20999", "expected a port (8080), auto, or a range (20000-20999)"],
  ];
  for (const [value, want] of cases)
    it(`${value} → ${JSON.stringify(want)}`, () => expect(servicePortOf(value)).toEqual(want));

  it("auto is 20000-29999: below Linux's ephemeral ports (32768 on)", () => {
    expect(AUTO_PORT_RANGE).toEqual({ from: 20000, to: 29999 });
  });
});

describe("the planner reads ServicePort=auto and ranges", () => {
  it("auto: the spec carries the range, no fixed port; plan says the strategy", () => {
    const p = plan("ServicePort=auto\n");
    expect(p.units[0]?.service).toEqual({ name: "web", portRange: AUTO_PORT_RANGE, interval: "2s" });
    expect(p.units[0]?.upgrade).toBeUndefined(); // side by side: the old one is pruned after confirmation
    expect(p.strategies[0]?.strategy.kind).toBe("dynamic-port");
    expect(p.strategies[0]?.strategy.reason).toMatch(/clients find the new one through Consul/);
  });
  it("a range with a check naming ${HOUSTON_PORT}", () => {
    const p = plan("ServicePort=20000-20099\nServiceCheckHTTP=http://127.0.0.1:${HOUSTON_PORT}/health\n");
    expect(p.units[0]?.service).toMatchObject({
      portRange: { from: 20000, to: 20099 },
      checkHttp: "http://127.0.0.1:${HOUSTON_PORT}/health",
    });
  });
  const refused: [string, string, RegExp][] = [
    [
      "a bad value",
      "ServicePort=8080-80\n",
      /web.service:5: \[X-Houston\] ServicePort=8080-80: the range runs from low to high/,
    ],
    [
      "a word",
      "ServicePort=dynamic\n",
      /web.service:5: \[X-Houston\] ServicePort=dynamic: expected a port \(8080\), auto/,
    ],
    [
      "a fixed port in the check of an auto port",
      "ServicePort=auto\nServiceCheckHTTP=http://127.0.0.1:8080/health\n",
      /web.service:5: \[X-Houston\] check URL http:\/\/127.0.0.1:8080\/health must name its port \$\{HOUSTON_PORT\}/,
    ],
    [
      "${HOUSTON_PORT} with a fixed port",
      "ServicePort=8080\nServiceCheckHTTP=http://127.0.0.1:${HOUSTON_PORT}/\n",
      /web.service:5: \[X-Houston\] check URL .*: \$\{HOUSTON_PORT\} is only set with ServicePort=auto or a range \(this service's port is 8080\)/,
    ],
    [
      "a check on another host, port or not",
      "ServicePort=auto\nServiceCheckHTTP=http://10.1.2.3:${HOUSTON_PORT}/\n",
      /web.service:6: \[X-Houston\] check URL http:\/\/10.1.2.3:\$\{HOUSTON_PORT\}\/ must target this host \(loopback\)/,
    ],
    [
      "auto with Socket=",
      "Socket=8080\nServicePort=auto\n",
      /web.service: \[X-Houston\] Socket= and ServicePort=20000-29999/,
    ],
  ];
  for (const [title, xHouston, re] of refused) it(`refuses ${title}`, () => expect(() => plan(xHouston)).toThrow(re));

  it("fleet refuses it, naming the file", () => {
    expect(() => plan("ServicePort=auto\n", FLEET_UNIT_RULES)).toThrow(
      /web.service: \[X-Houston\] ServicePort=20000-29999: needs the agents scheduler/,
    );
  });
});

describe("what an agent accepts", () => {
  const decl = (o: object) => ServiceDeclSchema.safeParse({ name: "web", ...o });
  it("exactly one of a fixed port and a range", () => {
    expect(decl({ port: 80 }).success).toBe(true);
    expect(decl({ portRange: { from: 1, to: 2 } }).success).toBe(true);
    expect(decl({}).success).toBe(false);
    expect(decl({ port: 80, portRange: { from: 1, to: 2 } }).success).toBe(false);
    expect(decl({ portRange: { from: 3, to: 2 } }).success).toBe(false);
  });
  it("a range in a fleet-scheduled spec is refused (fleet starts its units before a port could be handed)", () => {
    const unit = {
      name: "web@1.service",
      stack: "web",
      component: null,
      group: null,
      version: "1",
      role: "service",
      text: "[Service]\nExecStart=/bin/true\n",
      placements: [{ global: false, metadata: {} }],
      service: { name: "web", portRange: { from: 20000, to: 20009 }, interval: "2s" },
    };
    const spec = {
      schema: 1,
      stack: "web",
      generation: 1,
      environment: "test",
      deployment: { type: "service", name: "web", version: "1", group: null },
      createdAt: "2026-01-01T00:00:00Z",
      units: [unit],
    };
    expect(StackSpecSchema.safeParse(spec).success).toBe(true);
    const fleet = StackSpecSchema.safeParse({ ...spec, scheduler: "fleet" });
    expect(fleet.success).toBe(false);
    expect(fleet.error?.issues[0]?.message).toMatch(/ServicePort=auto or a range needs the agents scheduler/);
  });
  it("the check follows the port", () => {
    expect(checkUrlOf({}, 20417)).toBe("http://127.0.0.1:20417/");
    expect(checkUrlOf({ checkHttp: "http://127.0.0.1:${HOUSTON_PORT}/health" }, 20417)).toBe(
      "http://127.0.0.1:20417/health",
    );
  });
});

describe("portCandidates", () => {
  const range = { from: 100, to: 109 };
  it("goes round the range once from a place set by the unit's name, skipping taken ports", () => {
    const all = [...portCandidates(range, "web@1.service", new Set())];
    expect([...all].sort((a, b) => a - b)).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
    expect([...portCandidates(range, "web@1.service", new Set())]).toEqual(all); // the same on every host
    expect([...portCandidates(range, "web@1.service", new Set([all[0]!, 105]))]).toEqual(
      all.filter((p) => p !== all[0] && p !== 105),
    );
  });
  it("nothing when every port is taken", () => {
    expect([...portCandidates({ from: 5, to: 6 }, "x", new Set([5, 6]))]).toEqual([]);
  });
});

const unit = (name: string, service: DesiredUnit["service"], extra: Partial<DesiredUnit> = {}): DesiredUnit => ({
  name,
  runner: "agent",
  stack: "web",
  role: "service",
  version: name.replace(/^.*@|\.service$/g, ""),
  group: null,
  text: `text of ${name}`,
  hash: hashText(`text of ${name}`),
  service,
  ...extra,
});
const auto = (from = 20000, to = 20009): DesiredUnit["service"] => ({
  name: "web",
  portRange: { from, to },
  interval: "2s",
});
const wants = (units: DesiredUnit[]): HostDesired => ({
  units,
  archives: new Map(),
  generations: new Map([["web", 1]]),
  refused: new Map(),
});

describe("assignPorts", () => {
  const portsOf = (d: HostDesired) => Object.fromEntries(d.units.map((u) => [u.name, u.port ?? u.portProblem]));

  it("chooses a free port per version, records it, and keeps it (an agent restart reads the same)", async () => {
    const state = new AgentState(":memory:");
    const probed: number[] = [];
    const isFree = async (p: number) => (probed.push(p), p % 2 === 0); // odd ports are in use here
    const first = await assignPorts(wants([unit("web@1.service", auto())]), state, isFree);
    const p1 = first.units[0]!.port!;
    expect(p1 % 2).toBe(0);
    expect(state.ports()).toEqual(new Map([["web@1.service", p1]]));
    probed.length = 0;
    const again = await assignPorts(wants([unit("web@1.service", auto())]), state, isFree);
    expect(again.units[0]!.port).toBe(p1);
    expect(probed).toEqual([]); // held: not probed again
  });

  it("two versions side by side never share a port; a fixed port declared here is never chosen", async () => {
    const state = new AgentState(":memory:");
    const fixed = unit("other@1.service", { name: "web-other", port: 20003, interval: "2s" });
    const d = await assignPorts(
      wants([unit("web@1.service", auto(20000, 20003)), unit("web@2.service", auto(20000, 20003)), fixed]),
      state,
      async () => true,
    );
    const [a, b] = [d.units[0]!.port!, d.units[1]!.port!];
    expect(a).not.toBe(b);
    expect([a, b]).not.toContain(20003);
    expect(d.units[2]!.port).toBeUndefined();
  });

  it("a port stays held while the unit is owned (being stopped), and is released once it is neither wanted nor owned", async () => {
    const state = new AgentState(":memory:");
    const d = await assignPorts(wants([unit("web@1.service", auto())]), state, async () => true);
    state.claimUnit("web@1.service", "web", "h");
    await assignPorts(wants([]), state, async () => true);
    expect(state.ports().get("web@1.service")).toBe(d.units[0]!.port);
    state.forgetUnit("web@1.service"); // removed: its port goes with it
    expect(state.ports().size).toBe(0);
    await assignPorts(wants([unit("web@2.service", auto())]), state, async () => true);
    await assignPorts(wants([]), state, async () => true); // wanted once, never written
    expect(state.ports().size).toBe(0);
  });

  it("a full range: the unit gets a problem instead (its stack is blocked, naming it)", async () => {
    const state = new AgentState(":memory:");
    const d = await assignPorts(wants([unit("web@1.service", auto(20000, 20001))]), state, async () => false);
    expect(portsOf(d)).toEqual({
      "web@1.service": expect.stringMatching(/^no free port in 20000-20001 for web@1\.service/),
    });
    const steps = reconcileHost(
      { owned: [], foreign: new Map(), archives: new Map(), registrationsStale: false },
      d,
    ).steps;
    expect(steps[0]).toMatchObject({ kind: "blocked", reason: expect.stringMatching(/no free port in 20000-20001/) });
  });

  it("the state refuses to give a held port to another unit", () => {
    const state = new AgentState(":memory:");
    state.setPort("web@1.service", 20001);
    expect(() => state.setPort("web@2.service", 20001)).toThrow();
    expect(state.ports()).toEqual(new Map([["web@1.service", 20001]]));
  });
});

describe("reconcile with a chosen port", () => {
  const observed = (name: string, o: Partial<ObservedUnit> = {}): ObservedUnit => ({
    name,
    stack: "web",
    fileHash: hashText(`text of ${name}`),
    startedHash: hashText(`text of ${name}`),
    activeState: "active",
    serviceId: `houston:${name}`,
    ...o,
  });
  const host = (owned: ObservedUnit[]) => ({
    owned,
    foreign: new Map(),
    archives: new Map(),
    registrationsStale: false,
  });

  it("a new version: its file with the drop-in, started, registered with its own port beside the old one", () => {
    const v1 = unit("web@1.service", auto(), { port: 20001 });
    const v2 = unit("web@2.service", auto(), { port: 20007 });
    const { steps } = reconcileHost(
      host([observed("web@1.service", { dropIn: dropInText("web@1.service", 20001) })]),
      wants([v1, v2]),
    );
    expect(steps.find((s) => s.kind === "write-unit")).toEqual({
      kind: "write-unit",
      stack: "web",
      name: "web@2.service",
      text: "text of web@2.service",
      hash: hashText("text of web@2.service"),
      dropIn:
        "# Written by houston-agent: the port of web@2.service on this host ([X-Houston] ServicePort=auto or a range)\n[Service]\nEnvironment=HOUSTON_PORT=20007\n",
    });
    const reg = steps.find((s) => s.kind === "register-service");
    expect(reg).toMatchObject({ name: "web@2.service", port: 20007 });
    expect(reg && "sharedPort" in reg).toBe(false); // its own port: the agent asks its check first
  });

  it("a drop-in that went missing is written again; the unit is not restarted", () => {
    const v1 = unit("web@1.service", auto(), { port: 20001 });
    const { steps } = reconcileHost(host([observed("web@1.service", { dropIn: null })]), wants([v1]));
    expect(steps.map((s) => s.kind)).toEqual(["write-unit", "reload"]);
    expect(steps[0]).toMatchObject({ dropIn: expect.stringContaining("HOUSTON_PORT=20001") });
  });

  it("a unit that no longer has a range loses its drop-in", () => {
    const fixed = unit("web@1.service", { name: "web", port: 8080, interval: "2s" });
    const { steps } = reconcileHost(
      host([observed("web@1.service", { dropIn: dropInText("web@1.service", 20001) })]),
      wants([fixed]),
    );
    expect(steps[0]).toMatchObject({ kind: "write-unit", removeDropIn: true });
    expect(steps[0] && "dropIn" in steps[0]).toBe(false);
  });
});
