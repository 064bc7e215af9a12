/**
 * A stack can only touch its own units and ask its own host for checks: refused by the planner
 * (with the file named) and again by the spec schema every agent decodes with.
 */
import { describe, expect, it } from "vitest";
import { planDeployment, type DeploymentRequest, type PlanInputUnit } from "../../controller/plan/plan-deployment.js";
import { StackSpecSchema, checkTargetProblem, type StackSpec } from "../../shared/spec.js";

const svc = (text: string, version = "1"): PlanInputUnit => ({
  name: "x",
  version,
  role: "service",
  template: { text, source: "units/service/x.service" },
});
const dep = (name: string, text = "[Service]\nExecStart=/bin/true\n"): PlanInputUnit => ({
  name,
  version: "1",
  role: "dependency",
  template: { text, source: `units/shared/${name}.service` },
});
const req = (name: string, version = "1"): DeploymentRequest => ({
  environment: "test",
  type: "service",
  name,
  version,
  group: null,
  dependencies: true,
});
const withService = (lines: string) => `[Service]\nExecStart=/bin/true\n\n[X-Houston]\nServicePort=8080\n${lines}`;

describe("planner refuses what a stack may not ask for", () => {
  const refused: [string, () => unknown, RegExp][] = [
    [
      "a stack rendering to user@<uid>",
      () =>
        planDeployment(
          { variables: {}, units: [svc("[Service]\nExecStart=/bin/true\n", "0")], files: [], filesSource: "" },
          req("user", "0"),
        ),
      /units\/service\/x.service: user@0.service would shadow the system's user@ units/,
    ],
    [
      "a stack rendering to getty@tty1",
      () =>
        planDeployment(
          { variables: {}, units: [svc("[Service]\nExecStart=/bin/true\n", "tty1")], files: [], filesSource: "" },
          req("getty", "tty1"),
        ),
      /getty@tty1.service would shadow/,
    ],
    [
      "a systemd-* name",
      () => planDeployment({ variables: {}, units: [dep("journald")], files: [], filesSource: "" }, req("systemd")),
      /systemd-journald@1.service would shadow the system's systemd-\* units/,
    ],
    [
      "a check on another host",
      () =>
        planDeployment(
          {
            variables: {},
            units: [svc(withService("ServiceCheckHTTP=http://10.1.2.3:8080/"))],
            files: [],
            filesSource: "",
          },
          req("web"),
        ),
      /units\/service\/x.service:6: \[X-Houston\] check URL http:\/\/10.1.2.3:8080\/ must target this host \(loopback\)/,
    ],
    [
      "a check by DNS name",
      () =>
        planDeployment(
          {
            variables: {},
            units: [svc(withService("ServiceCheckHTTP=http://metadata.internal/"))],
            files: [],
            filesSource: "",
          },
          req("web"),
        ),
      /check URL must name this host by address/,
    ],
    [
      "a check with another scheme",
      () =>
        planDeployment(
          {
            variables: {},
            units: [svc(withService("ServiceCheckHTTP=file:///etc/shadow"))],
            files: [],
            filesSource: "",
          },
          req("web"),
        ),
      /check URL/,
    ],
    [
      "another stack's service name",
      () =>
        planDeployment(
          { variables: {}, units: [svc(withService("ServiceName=payments"))], files: [], filesSource: "" },
          req("web"),
        ),
      /service name payments is not stack web's to register/,
    ],
    [
      "the agent's own service name",
      () =>
        planDeployment(
          { variables: {}, units: [svc(withService("ServiceName=houston-agent"))], files: [], filesSource: "" },
          req("houston"),
        ),
      /service name houston-agent is reserved/,
    ],
  ];
  for (const [title, fn, re] of refused) it(`refuses ${title}`, () => expect(fn).toThrow(re));

  it("accepts loopback checks and the stack's own service names", () => {
    const plan = planDeployment(
      {
        variables: {},
        units: [svc(withService("ServiceName=web-api\nServiceCheckHTTP=http://[::1]:8080/health"))],
        files: [],
        filesSource: "",
      },
      req("web"),
    );
    expect(plan.units[0]?.service).toMatchObject({ name: "web-api", checkHttp: "http://[::1]:8080/health" });
  });
});

describe("the agent re-checks a spec written by hand", () => {
  const unit = {
    name: "evil@1.service",
    stack: "evil",
    component: null,
    group: null,
    version: "1",
    role: "service" as const,
    text: "[Service]\nExecStart=/bin/true\n",
    placements: [{ global: true, metadata: {} }],
  };
  const spec = (units: object[]): unknown => ({
    schema: 1,
    stack: "evil",
    generation: 1,
    environment: "test",
    deployment: { type: "service", name: "evil", version: "1", group: null },
    createdAt: "",
    units,
  });
  const bad: [string, object, RegExp][] = [
    [
      "another stack's unit name",
      { ...unit, name: "beat@1.service" },
      /not the name its parts render to in stack evil \(evil@1.service\)/,
    ],
    ["a vendor unit name", { ...unit, name: "user@0.service", version: "0" }, /shadow the system's user@ units/],
    ["a unit claiming another stack", { ...unit, stack: "global" }, /belongs to stack global, not evil/],
    [
      "a check by host name",
      { ...unit, service: { name: "evil", port: 80, checkHttp: "http://metadata.internal/", interval: "2s" } },
      /must name this host by address/,
    ],
    [
      "a check with credentials",
      { ...unit, service: { name: "evil", port: 80, checkHttp: "http://u:p@127.0.0.1/", interval: "2s" } },
      /must not carry credentials/,
    ],
    [
      "a service under another name",
      { ...unit, service: { name: "payments", port: 80, interval: "2s" } },
      /not stack evil's to register/,
    ],
  ];
  for (const [title, u, re] of bad) {
    it(`rejects ${title}`, () => {
      const r = StackSpecSchema.safeParse(spec([u]));
      expect(r.success).toBe(false);
      expect(r.error?.issues.map((i) => i.message).join("\n")).toMatch(re);
    });
  }
  it("accepts the same unit named as its parts render", () => {
    expect(StackSpecSchema.safeParse(spec([unit])).success).toBe(true);
  });
  it("the agent accepts a check on one of its own addresses", () => {
    expect(checkTargetProblem("http://10.77.0.2:8080/", new Set(["10.77.0.2"]))).toBeNull();
    expect(checkTargetProblem("http://10.77.0.3:8080/", new Set(["10.77.0.2"]))).toMatch(/or one of its own addresses/);
    expect(checkTargetProblem("http://169.254.169.254/latest/", new Set(["10.77.0.2"]))).toMatch(
      /must target this host/,
    );
  });
  it("keeps StackSpec a type with units", () => {
    const parsed = StackSpecSchema.parse(spec([unit])) as StackSpec;
    expect(parsed.units).toHaveLength(1);
  });
});
