import { describe, expect, it } from "vitest";
import { planDeployment, type DeploymentRequest, type PlanInputUnit } from "../../controller/plan/plan-deployment.js";
import { StackSpecSchema } from "../../shared/spec.js";

const svc = (text: string): PlanInputUnit => ({
  name: "web",
  version: "2",
  role: "service",
  template: { text, source: "units/service/web.service" },
});
const dep = (text = "[Service]\nExecStart=/bin/true\n"): PlanInputUnit => ({
  name: "db",
  version: "1",
  role: "dependency",
  template: { text, source: "units/shared/db.service" },
});
const req = (o: Partial<DeploymentRequest> = {}): DeploymentRequest => ({
  environment: "test",
  type: "service",
  name: "web",
  version: "2",
  group: null,
  dependencies: true,
  ...o,
});
const service = (socket: string) =>
  `[Service]\nExecStart=/usr/bin/web\n\n[X-Fleet]\nMachineMetadata=role=web\n\n[X-Houston]\nServicePort=8080\n${socket}`;
const plan = (units: PlanInputUnit[], r = req()) =>
  planDeployment({ variables: {}, units, files: [], filesSource: "files/service/web.yaml" }, r);

describe("[X-Houston] Socket=", () => {
  it("adds the stack's socket and its guard first, outside the chain, and wires every version to the socket", () => {
    const p = plan([dep(), svc(service("Socket=8080\nSocket=127.0.0.1:9090\n"))]);
    expect(p.units.map((u) => `${u.name} ${u.role}`)).toEqual([
      "web.socket socket",
      "web.service socket-guard",
      "web-db@1.service dependency",
      "web@2.service service",
    ]);
    const [socket, guard, db, web] = p.units;
    expect(socket?.text).toContain("[Socket]\nListenStream=8080\nListenStream=127.0.0.1:9090\nAccept=no");
    expect(guard?.text).toContain("Type=oneshot\nRemainAfterExit=yes");
    expect(db?.text).not.toContain("web.socket");
    expect(web?.text).toMatch(/Requires=web.socket\nAfter=web.socket/);
    expect(web?.text).toContain("Sockets=web.socket");
    expect(socket?.placements).toEqual(web?.placements);
    const spec = {
      schema: 1,
      stack: "web",
      generation: 1,
      environment: "test",
      createdAt: "",
      deployment: p.deployment,
      units: p.units,
    };
    expect(StackSpecSchema.safeParse(spec).success).toBe(true);
  });
  it("is the same socket for every version (stable name and text)", () => {
    const a = plan([svc(service("Socket=8080\n"))]).units[0];
    const b = plan([{ ...svc(service("Socket=8080\n")), version: "3" }], req({ version: "3" })).units[0];
    expect(b).toEqual(a);
  });
  it("a group gets its own socket", () => {
    expect(
      plan([svc(service("Socket=8080\n"))], req({ group: "blue" }))
        .units.slice(0, 2)
        .map((u) => u.name),
    ).toEqual(["web:blue.socket", "web:blue.service"]);
  });
  it("without Socket= nothing changes", () => {
    expect(plan([svc(service(""))]).units.map((u) => u.name)).toEqual(["web@2.service"]);
  });
  const bad: [string, PlanInputUnit[], RegExp][] = [
    [
      "a port out of range",
      [svc(service("Socket=70000\n"))],
      /web.service:\d+: \[X-Houston\] Socket=70000: port out of range/,
    ],
    ["a host name", [svc(service("Socket=localhost:80\n"))], /Socket=localhost:80: not a port or address:port/],
    ["a bad address", [svc(service("Socket=999.1.1.1:80\n"))], /999.1.1.1 is not an IP address/],
    [
      "Socket= on a dependency",
      [dep("[Service]\nExecStart=/bin/true\n[X-Houston]\nSocket=80\n"), svc(service(""))],
      /db.service: \[X-Houston\] Socket= belongs on the service unit/,
    ],
  ];
  for (const [title, units, re] of bad) it(`refuses ${title}`, () => expect(() => plan(units)).toThrow(re));
  it("refuses a stack whose socket would shadow a system socket", () => {
    expect(() => plan([svc(service("Socket=80\n"))], req({ name: "dbus" }))).toThrow(/would shadow the system.s dbus/);
  });
});
