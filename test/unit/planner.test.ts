import { describe, expect, it } from "vitest";
import type { FileEntry } from "../../controller/plan/inputs.js";
import { planDeployment, type DeploymentRequest, type PlanInputUnit } from "../../controller/plan/plan-deployment.js";
import { diffPlan } from "../../controller/plan/diff.js";
import type { StackSpec } from "../../shared/spec.js";

const tpl = (text: string, source = "units/x.service") => ({ text, source });
const dep = (name: string, version: string | null, text: string): PlanInputUnit => ({
  name,
  version,
  role: "dependency",
  template: tpl(text, `units/shared/${name}.service`),
});
const svc = (name: string, version: string, text: string): PlanInputUnit => ({
  name,
  version,
  role: "service",
  template: tpl(text, `units/service/${name}.service`),
});
const glob = (name: string, version: string | null, text: string): PlanInputUnit => ({
  name,
  version,
  role: "global",
  template: tpl(text),
});
const file = (path: string, content: string, mode = 0o644): FileEntry => ({
  path,
  content: Buffer.from(content),
  mode,
  owner: "root",
  group: "root",
});
const req = (over: Partial<DeploymentRequest>): DeploymentRequest => ({
  environment: "test",
  type: "service",
  name: "example",
  version: "7b7d061b",
  group: null,
  dependencies: true,
  ...over,
});
const simple = "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n";

describe("planDeployment: names and order", () => {
  const cases: {
    title: string;
    units: PlanInputUnit[];
    files: FileEntry[];
    req: Partial<DeploymentRequest>;
    names: (string | RegExp)[];
  }[] = [
    {
      title: "service with dependencies and files: archive, deps in manifest order, service",
      units: [
        dep("memcached", "1.4.24", simple),
        dep("pgbouncer", "f20fb494", simple),
        svc("example", "7b7d061b", simple),
      ],
      files: [file("/etc/a", "a")],
      req: {},
      names: [
        /^example-file-deploy@[0-9a-f]{8}\.service$/,
        "example-memcached@1.4.24.service",
        "example-pgbouncer@f20fb494.service",
        "example@7b7d061b.service",
      ],
    },
    {
      title: "no version → latest; no files → no archive unit",
      units: [dep("memcached", null, simple), svc("example", "7b7d061b", simple)],
      files: [],
      req: {},
      names: ["example-memcached@latest.service", "example@7b7d061b.service"],
    },
    {
      title: "a group goes before the @",
      units: [dep("nginx", "1.9.3", simple), svc("example", "2", simple)],
      files: [],
      req: { group: "blue", version: "2" },
      names: ["example-nginx:blue@1.9.3.service", "example:blue@2.service"],
    },
    {
      title: "global: units first, the archive after them",
      units: [glob("consul", "1.8.7", simple), glob("registrator", null, simple)],
      files: [file("/etc/g", "g")],
      req: { type: "global", name: "global", version: null },
      names: [
        // the original's names: global units bare, the global file unit prefixed
        "consul@1.8.7.service",
        "registrator@latest.service",
        /^global-file-deploy@[0-9a-f]{8}\.service$/,
      ],
    },
    {
      title: "a dependency already named after its stack is not prefixed again",
      units: [dep("shop-db", "3", simple), dep("cache", "1", simple), svc("shop", "2", simple)],
      files: [],
      req: { type: "service", name: "shop", version: "2" },
      names: ["shop-db@3.service", "shop-cache@1.service", "shop@2.service"],
    },
    {
      title: "standalone: archive then the stack's units, no service unit",
      units: [dep("datadog", "5.2.0", simple)],
      files: [file("/etc/dd", "d")],
      req: { type: "standalone", name: "monitoring", version: null },
      names: [/^monitoring-file-deploy@[0-9a-f]{8}\.service$/, "monitoring-datadog@5.2.0.service"],
    },
  ];
  for (const c of cases) {
    it(c.title, () => {
      const plan = planDeployment(
        { variables: {}, units: c.units, files: c.files, filesSource: "files/x.yaml" },
        req(c.req),
      );
      expect(plan.units.map((u) => u.name)).toHaveLength(c.names.length);
      plan.units.forEach((u, i) => expect(u.name).toMatch(c.names[i] as string | RegExp));
    });
  }

  it("archive unit version is the first 8 hex of the archive digest", () => {
    const plan = planDeployment(
      { variables: {}, units: [svc("example", "1", simple)], files: [file("/etc/a", "a")], filesSource: "f" },
      req({ version: "1" }),
    );
    const archive = plan.units[0]!;
    expect(archive.role).toBe("archive");
    expect(archive.archive).toBe(plan.archives[0]!.sha256);
    expect(archive.version).toBe(plan.archives[0]!.sha256.slice(0, 8));
  });

  it("stores the name's parts next to the name", () => {
    const plan = planDeployment(
      {
        variables: {},
        units: [dep("nginx", "1.9.3", simple), svc("example", "2", simple)],
        files: [],
        filesSource: "f",
      },
      req({ group: "blue", version: "2" }),
    );
    expect(
      plan.units.map(({ stack, component, group, version, role }) => ({ stack, component, group, version, role })),
    ).toEqual([
      { stack: "example", component: "nginx", group: "blue", version: "1.9.3", role: "dependency" },
      { stack: "example", component: null, group: "blue", version: "2", role: "service" },
    ]);
  });
});

describe("planDeployment: unit rendering", () => {
  const plan1 = (
    units: PlanInputUnit[],
    over: Partial<DeploymentRequest> = {},
    variables: Record<string, string> = {},
  ) => planDeployment({ variables, units, files: [], filesSource: "f" }, req(over)).units;

  const cases: {
    title: string;
    units: PlanInputUnit[];
    over?: Partial<DeploymentRequest>;
    vars?: Record<string, string>;
    unit: number;
    contains: string[];
    excludes?: string[];
  }[] = [
    {
      title: "chains Requires=/After= on the previous unit right after Description",
      units: [
        dep("memcached", "1", simple),
        svc("example", "2", "[Unit]\nDescription=app\nWants=network.target\n\n[Service]\nExecStart=/bin/true\n"),
      ],
      over: { version: "2" },
      unit: 1,
      contains: [
        "[Unit]\nDescription=app\nRequires=example-memcached@1.service\nAfter=example-memcached@1.service\nWants=network.target\n",
      ],
    },
    {
      title: "does not duplicate a dependency already present",
      units: [
        dep("memcached", "1", simple),
        svc("example", "2", "[Unit]\nDescription=app\nAfter=memcached.service\n\n[Service]\nExecStart=/bin/true\n"),
      ],
      over: { version: "2" },
      unit: 1,
      contains: ["Requires=example-memcached@1.service"],
      excludes: ["After=example-memcached@1.service\nAfter=example-memcached@1.service"],
    },
    {
      title: "--no-dependencies adds nothing but still rewrites references",
      units: [
        dep("memcached", "1", simple),
        svc(
          "example",
          "2",
          "[Unit]\nDescription=app\nAfter=memcached.service other.service\n\n[Service]\nExecStart=/bin/true\n",
        ),
      ],
      over: { version: "2", dependencies: false },
      unit: 1,
      contains: ["After=example-memcached@1.service other.service"],
      excludes: ["Requires="],
    },
    {
      title: "adds a [Unit] section when the template has none",
      units: [dep("a", "1", simple), svc("example", "2", "[Service]\nExecStart=/bin/true\n")],
      over: { version: "2" },
      unit: 1,
      contains: ["[Unit]\nRequires=example-a@1.service\nAfter=example-a@1.service\n\n[Service]"],
    },
    {
      title: "substitutes {service}, {environment}, {group} and variables, but not ${SHELL_VARS}",
      units: [
        svc(
          "example",
          "2",
          "[Unit]\nDescription={service} in {environment} {greeting} {unknown}\n\n[Service]\nExecStart=/bin/sh -c 'echo ${greeting} $HOME'\n",
        ),
      ],
      over: { version: "2" },
      vars: { greeting: "hi" },
      unit: 0,
      contains: ["Description=example in test hi {unknown}", "echo ${greeting} $HOME"],
    },
    {
      title: "without a group, MachineMetadata group= pairs are dropped, others kept",
      units: [
        svc(
          "example",
          "2",
          "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineMetadata=group=blue\nMachineMetadata=role=web group=green\n",
        ),
      ],
      over: { version: "2" },
      unit: 0,
      contains: ["[X-Fleet]\nMachineMetadata=role=web\n"],
      excludes: ["group="],
    },
    {
      title: "with a group, {group} placement is kept and filled in",
      units: [svc("example", "2", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineMetadata=group={group}\n")],
      over: { version: "2", group: "blue" },
      unit: 0,
      contains: ["MachineMetadata=group=blue"],
    },
  ];
  for (const c of cases) {
    it(c.title, () => {
      const text = plan1(c.units, c.over, c.vars)[c.unit]!.text;
      for (const s of c.contains) expect(text).toContain(s);
      for (const s of c.excludes ?? []) expect(text).not.toContain(s);
    });
  }

  it("reads placement and the [X-Houston] service declaration", () => {
    const [u] = plan1(
      [
        svc(
          "example",
          "2",
          '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\nMachineMetadata="role=web" role=api disk=ssd\n\n[X-Houston]\nServicePort=8080\n',
        ),
      ],
      { version: "2" },
    );
    expect(u!.placements).toEqual([{ global: true, metadata: { role: ["web", "api"], disk: ["ssd"] } }]);
    expect(u!.service).toEqual({ name: "example", port: 8080, interval: "2s" });
  });

  it("archive placement: beside placed units (the scheduler's), or global with global units", () => {
    const units = [
      dep("a", "1", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=role=web\n"),
      svc("example", "2", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=role=db\n"),
    ];
    const plan = planDeployment(
      { variables: {}, units, files: [file("/x", "x")], filesSource: "f" },
      req({ version: "2" }),
    );
    expect(plan.units[0]!.placements).toEqual([{ global: false, metadata: {} }]);
    const globals = [
      dep("a", "1", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n"),
      dep("b", "1", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=db\n"),
    ];
    const g = planDeployment(
      { variables: {}, units: globals, files: [file("/x", "x")], filesSource: "f" },
      req({ type: "standalone", name: "mon", version: null }),
    );
    expect(g.units[0]!.placements).toEqual([
      { global: true, metadata: { role: ["web"] } },
      { global: true, metadata: { role: ["db"] } },
    ]);
  });

  it("reads fleet's scheduling directives, MachineOf= naming the rendered unit", () => {
    const units = [
      dep("db", "3", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=shop-db@*\nMachineMetadata=role=db\n"),
      svc(
        "shop",
        "2",
        "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineOf=db.service\nMachineID=h2\n[X-Houston]\nInstances=1\n",
      ),
    ];
    const p = planDeployment(
      { variables: {}, units, files: [], filesSource: "f" },
      req({ name: "shop", version: "2" }),
    );
    expect(p.units.map((u) => u.placements[0])).toEqual([
      { global: false, metadata: { role: ["db"] }, conflicts: ["shop-db@*"] },
      { global: false, metadata: {}, machineId: "h2", machineOf: ["shop-db@3.service"], instances: 1 },
    ]);
  });

  it("refuses scheduling directives that cannot hold, naming the line", () => {
    const bad = (x: string): unknown =>
      planDeployment(
        { variables: {}, units: [dep("a", "1", `[Service]\nExecStart=/bin/true\n${x}`)], files: [], filesSource: "f" },
        req({ type: "standalone", name: "s", version: null }),
      );
    expect(() => bad("[X-Fleet]\nGlobal=true\nConflicts=x@*\n")).toThrow(
      /:5: \[X-Fleet\] Conflicts= does not apply to a Global=true unit/,
    );
    expect(() => bad("[X-Houston]\nInstances=0\n")).toThrow(/:4: \[X-Houston\] Instances=0: expected a whole number/);
    expect(() => bad("[X-Houston]\nInstances=two\n")).toThrow(/Instances=two/);
    expect(() => bad("[X-Fleet]\nMachineID=a\nMachineID=b\n")).toThrow(
      /:5: \[X-Fleet\] MachineID= names more than one/,
    );
    expect(() => bad("[X-Fleet]\nMachineID=a\n[X-Houston]\nInstances=2\n")).toThrow(/cannot go with MachineID/);
  });

  it("rejects bad requests and bad units with the source named", () => {
    expect(() => plan1([svc("example", "2", simple)], { version: null })).toThrow(/needs a VERSION/);
    expect(() => plan1([svc("example", "2", simple)], { group: "Blue!" })).toThrow(/invalid group/);
    expect(() => plan1([svc("example", "2", "Description=x\n")], { version: "2" })).toThrow(
      /units\/service\/example.service:1: entry before the first \[Section\]/,
    );
    expect(() =>
      plan1([svc("example", "2", "[Service]\nExecStart=/bin/true\n[X-Houston]\nServicePort=http\n")], { version: "2" }),
    ).toThrow(
      /units\/service\/example.service:4: \[X-Houston\] ServicePort=http: expected a port \(8080\), auto, or a range/,
    );
    expect(() => plan1([dep("a", "1", simple), dep("a", "1", simple)])).toThrow(/listed twice/);
  });

  it("same input → same archive bytes and digest", () => {
    const files = [file("/b", "2", 0o600), file("/a", "1")];
    const p1 = planDeployment(
      { variables: {}, units: [], files, filesSource: "f" },
      req({ type: "standalone", name: "s", version: null }),
    );
    const p2 = planDeployment(
      { variables: {}, units: [], files: [...files].reverse(), filesSource: "f" },
      req({ type: "standalone", name: "s", version: null }),
    );
    expect(p1.archives[0]!.bytes.equals(p2.archives[0]!.bytes)).toBe(true);
    expect(p1.archives[0]!.files.map((f) => f.path)).toEqual(["/a", "/b"]);
  });
});

describe("diffPlan", () => {
  const spec = (units: { name: string; group?: string | null; text?: string }[]): StackSpec => ({
    schema: 1,
    stack: "example",
    generation: 3,
    environment: "test",
    createdAt: "",
    deployment: { type: "service", name: "example", version: "1", group: null },
    units: units.map((u) => ({
      name: u.name,
      stack: "example",
      component: null,
      group: u.group ?? null,
      version: "1",
      role: "service",
      text: u.text ?? "t",
      placements: [{ global: false, metadata: {} }],
    })),
  });
  const planned = (names: string[], text = "t") => spec(names.map((name) => ({ name, text }))).units;
  const cases = [
    {
      title: "nothing in Consul: all new",
      plan: ["a@2.service"],
      current: null,
      want: { added: ["a@2.service"], unchanged: [], changed: [], replaced: [], untouched: [] },
    },
    {
      title: "new version replaces the old",
      plan: ["a@2.service"],
      current: spec([{ name: "a@1.service" }]),
      want: { added: ["a@2.service"], unchanged: [], changed: [], replaced: ["a@1.service"], untouched: [] },
    },
    {
      title: "same unit, same text: unchanged",
      plan: ["a@1.service"],
      current: spec([{ name: "a@1.service" }]),
      want: { added: [], unchanged: ["a@1.service"], changed: [], replaced: [], untouched: [] },
    },
    {
      title: "same unit, new text: changed",
      plan: ["a@1.service"],
      current: spec([{ name: "a@1.service", text: "old" }]),
      want: { added: [], unchanged: [], changed: ["a@1.service"], replaced: [], untouched: [] },
    },
    {
      title: "another group is left alone",
      plan: ["a@2.service"],
      current: spec([{ name: "a:blue@1.service", group: "blue" }]),
      want: { added: ["a@2.service"], unchanged: [], changed: [], replaced: [], untouched: ["a:blue@1.service"] },
    },
  ];
  for (const c of cases) it(c.title, () => expect(diffPlan(planned(c.plan), null, c.current)).toEqual(c.want));
});
