import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeBase64, loadFiles } from "../../controller/config/files.js";
import { loadDeploymentInputs } from "../../controller/config/load.js";
import { loadManifest, parseUnitRef } from "../../controller/config/manifest.js";
import { ConfigError } from "../../shared/errors.js";

function configDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "houston-cfg-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const manifest = "environments:\n  test: {consul: http://127.0.0.1:8500}\n";

describe("manifest.yaml", () => {
  it("parses unit references", () => {
    const w = { file: "m" };
    expect(parseUnitRef("nginx", w)).toMatchObject({ name: "nginx", version: null, environment: null });
    expect(parseUnitRef("pgbouncer:f20fb494", w)).toMatchObject({ name: "pgbouncer", version: "f20fb494" });
    expect(parseUnitRef("newrelic-sysmond:2.1.0.124[environment:prod-us-east-1]", w)).toMatchObject({
      name: "newrelic-sysmond",
      version: "2.1.0.124",
      environment: "prod-us-east-1",
    });
    expect(() => parseUnitRef("x:1[region:eu]", w)).toThrow(/only \[environment:ENV\]/);
  });

  it("accepts both spellings of each section", () => {
    const a = loadManifest(
      configDir({ "manifest.yaml": `${manifest}global-units: [a]\nshared-stacks: {s: [b]}\nshared-units: {x: [c]}\n` }),
    );
    const b = loadManifest(
      configDir({ "manifest.yaml": `${manifest}global: [a]\nstandalone: {s: [b]}\nservice: {x: [c]}\n` }),
    );
    for (const m of [a, b]) {
      expect(m.globalUnits.map((r) => r.name)).toEqual(["a"]);
      expect(m.standalone.s?.map((r) => r.name)).toEqual(["b"]);
      expect(m.services.x?.map((r) => r.name)).toEqual(["c"]);
    }
  });

  it("scheduler: fleet when the environment names a fleet endpoint (a seed config works unchanged), else agents", () => {
    const m = loadManifest(
      configDir({
        "manifest.yaml":
          "environments:\n  seed: {fleet: 'http://10.0.0.1:49153'}\n  plain: {}\n  pinned: {fleet: 'unix:///var/run/fleet.sock', scheduler: agents}\n",
      }),
    );
    expect(m.environments.seed?.scheduler).toBe("fleet");
    expect(m.environments.plain?.scheduler).toBe("agents");
    expect(m.environments.pinned?.scheduler).toBe("agents");
    // chosen by the endpoint alone: the rollout says so (never silently)
    expect(m.environments.seed?.fleetByEndpoint).toBe(true);
    expect(m.environments.pinned?.fleetByEndpoint).toBeUndefined();
  });

  const bad: [string, string, RegExp][] = [
    [
      "unknown scheduler",
      "environments:\n  test:\n    scheduler: kubernetes\n",
      /manifest\.yaml:3: environments\.test\.scheduler: "kubernetes" is not a scheduler \(agents or fleet\)/,
    ],
    ["missing file", "", /manifest\.yaml: file not found/],
    ["invalid YAML", "environments:\n  test: [\n", /manifest\.yaml:\d+: invalid YAML/],
    ["no environments", "variables: {}\n", /manifest\.yaml: environments: at least one environment/],
    ["unknown key", `${manifest}servces: {}\n`, /manifest\.yaml:3: servces: unknown key/],
    [
      "unknown key in an environment (a typo would otherwise be ignored)",
      "environments:\n  test:\n    consull: http://10.0.0.1:8500\n",
      /manifest\.yaml:3: environments\.test\.consull: unknown key \(known: consul, fleet, scheduler, min-healthy\)/,
    ],
    [
      "environments as a word",
      "environments: test\n",
      /manifest\.yaml:1: environments: must be a mapping of environment name/,
    ],
    [
      "non-string unit ref",
      `${manifest}shared-units:\n  x:\n    - a\n    - {b: 1}\n`,
      /manifest\.yaml:6: shared-units\.x\.1: a unit reference must be a string/,
    ],
    ["bad unit ref", `${manifest}shared-units:\n  x:\n    - "a:b:c"\n`, /manifest\.yaml:5: unit reference "a:b:c"/],
    [
      "variables for an unknown environment",
      `${manifest}variables:\n  prod: {a: 1}\n`,
      /manifest\.yaml:4: variables\.prod: environment prod is not defined/,
    ],
  ];
  for (const [title, text, re] of bad) {
    it(`error names file and line: ${title}`, () => {
      const dir = configDir(text ? { "manifest.yaml": text } : {});
      expect(() => loadManifest(dir)).toThrow(re);
      expect(() => loadManifest(dir)).toThrow(ConfigError);
    });
  }
});

describe("write_files", () => {
  const load = (text: string, env = "test") => {
    const dir = configDir({ "f.yaml": text });
    return loadFiles(join(dir, "f.yaml"), env, { service: "example", environment: env, v: "V" });
  };
  it("a path too long for the host's filesystem, or none at all, names the entry's line", () => {
    expect(() => load(`- {path: /a, content: x}\n- {path: /${"n".repeat(256)}, content: x}\n`)).toThrow(
      /f\.yaml:2: 1\.path: path \/n+… has a name of 256 bytes \(at most 255\)/,
    );
    expect(() => load(`- {path: ${"/abcdefgh".repeat(512)}, content: x}\n`)).toThrow(
      /f\.yaml:1: 0\.path: .* is 4608 bytes long \(at most 4095\)/,
    );
    expect(() => load("- {path: /a, content: x}\n- content: x\n")).toThrow(
      /f\.yaml:2: 1: path must be an absolute path/,
    );
  });

  it("reads permissions however they are written, owner:group, b64, environment filter", () => {
    const files = load(
      [
        "- {path: /a, content: 'x {service} {v}', permissions: 0644}",
        "- {path: /b, content: x, permissions: '0600', owner: core:staff}",
        "- {path: /c, content: x, permissions: 0o755, owner: core}",
        "- {path: /d, content: aGk=, encoding: b64}",
        "- {path: /e, content: x, environment: prod}",
      ].join("\n"),
    );
    expect(files.map((f) => [f.path, f.mode.toString(8), f.owner, f.group, f.content.toString()])).toEqual([
      ["/a", "644", "root", "root", "x example V"],
      ["/b", "600", "core", "staff", "x"],
      ["/c", "755", "core", "core", "x"],
      ["/d", "644", "root", "root", "hi"],
    ]);
  });
  it("also takes a cloud-init document with write_files:", () => {
    expect(load("write_files:\n  - {path: /a, content: x}\n").map((f) => f.path)).toEqual(["/a"]);
  });
  const bad: [string, string, RegExp][] = [
    ["relative path", "- {path: etc/a, content: x}\n", /f\.yaml:1: 0\.path: path must be an absolute path/],
    ["'..' in path", "- {path: /etc/../a, content: x}\n", /0\.path: path \/etc\/\.\.\/a is not normalised/],
    [
      "bad mode",
      "- {path: /a, content: x, permissions: 0999}\n",
      /0\.permissions: permissions "0999" is not an octal mode/,
    ],
    [
      "duplicate path",
      "- {path: /a, content: x}\n- {path: /a, content: y}\n",
      /f\.yaml:2: 1\.path: path \/a is also written by entry 0/,
    ],
    ["unknown encoding", "- {path: /a, content: x, encoding: gzip}\n", /unsupported encoding "gzip"/],
    ["unknown field", "- {path: /a, contents: x}\n", /0\.contents: unknown field/],
    [
      "a control character in a path",
      '- {path: "/etc/a\\nb", content: x}\n',
      /0\.path: path "\/etc\/a\\nb" contains a control character/,
    ],
    [
      "a file where systemd reads units",
      "- {path: /etc/systemd/system/sshd.service.d/x.conf, content: x}\n",
      /is under \/etc\/systemd\/, where systemd reads units and drop-ins/,
    ],
    [
      "setuid permissions",
      "- {path: /usr/bin/x, content: x, permissions: '4755'}\n",
      /0\.permissions: permissions 4755 set setuid\/setgid/,
    ],
    [
      "base64 with padding in the middle",
      "- {path: /a, content: 'aGk=aGk=', encoding: b64}\n",
      /not base64 \(padding only at the end\)/,
    ],
    ["base64 with stray bits", "- {path: /a, content: 'aGl=', encoding: b64}\n", /does not decode to what it says/],
    [
      "an owner with extra ':' parts",
      "- {path: /a, content: x, owner: 'a:b:c'}\n",
      /0\.owner: owner "a:b:c" has more than one ':'/,
    ],
    [
      "an owner that is no user name",
      "- {path: /a, content: x, owner: 'ro ot'}\n",
      /owner "ro ot" is not a valid user name/,
    ],
    [
      "a group that is no group name",
      "- {path: /a, content: x, group: '../x'}\n",
      /0\.group: group "..\/x" is not a valid group name/,
    ],
  ];
  for (const [title, text, re] of bad) it(`rejects ${title}`, () => expect(() => load(text)).toThrow(re));
});

describe("loading a deployment", () => {
  it("names the manifest line when a unit template is missing", () => {
    const dir = configDir({
      "manifest.yaml": `${manifest}shared-units:\n  x:\n    - nope:1\n`,
      "units/service/x.service": "[Service]\nExecStart=/bin/true\n",
    });
    expect(() =>
      loadDeploymentInputs(dir, {
        environment: "test",
        type: "service",
        name: "x",
        version: "1",
        group: null,
        dependencies: true,
      }),
    ).toThrow(
      /manifest\.yaml:5: unit nope not found for stack x; looked in: .*units\/shared\/nope\.yaml, .*units\/shared\/nope\.service/,
    );
  });
  it("an unknown environment lists the known ones", () => {
    const dir = configDir({ "manifest.yaml": manifest });
    expect(() =>
      loadDeploymentInputs(dir, {
        environment: "prod",
        type: "global",
        name: "global",
        version: null,
        group: null,
        dependencies: true,
      }),
    ).toThrow(/environment "prod" is not defined \(known: test\)/);
  });
  it("uses NAME.yaml templates keyed by stack", () => {
    const dir = configDir({
      "manifest.yaml": `${manifest}shared-units:\n  x: [t]\n`,
      "units/shared/t.yaml": "x: |\n  [Service]\n  ExecStart=/bin/x\ny: |\n  [Service]\n  ExecStart=/bin/y\n",
      "units/service/x.service": "[Service]\nExecStart=/bin/true\n",
    });
    const inputs = loadDeploymentInputs(dir, {
      environment: "test",
      type: "service",
      name: "x",
      version: "1",
      group: null,
      dependencies: true,
    });
    expect(inputs.units[0]?.template.text).toContain("/bin/x");
  });
});

describe("decodeBase64", () => {
  // the definition: whitespace dropped, the alphabet, padding (at most two) only at the end, and
  // the bytes encode back to the text; decodeBase64 gets there without encoding a big file again
  function byDefinition(text: string): Buffer | "alphabet" | "stray" {
    const compact = text.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) return "alphabet";
    const bytes = Buffer.from(compact, "base64");
    return bytes.toString("base64").replace(/=+$/, "") === compact.replace(/=+$/, "") ? bytes : "stray";
  }

  it("agrees with the definition on every text of up to 5 characters over a mixed alphabet", () => {
    const alphabet = "AQgw+/= \n*";
    let differ = 0;
    let cases = 0;
    for (let len = 0; len <= 5; len++) {
      for (let i = 0; i < alphabet.length ** len; i++) {
        let text = "";
        for (let k = 0, x = i; k < len; k++, x = Math.floor(x / alphabet.length)) text += alphabet[x % alphabet.length];
        const want = byDefinition(text);
        const got = decodeBase64(text);
        cases++;
        if (typeof want === "string" ? got !== want : !(Buffer.isBuffer(got) && got.equals(want))) differ++;
      }
    }
    expect(cases).toBe(111_111);
    expect(differ).toBe(0);
  });

  it.each([
    ["aGk=", Buffer.from("hi")],
    ["aGk", Buffer.from("hi")],
    ["aGl=", "stray"],
    ["aGk=aGk=", "alphabet"],
    ["aG k=\n", Buffer.from("hi")],
    ["aGk===", "alphabet"],
    ["a-Gk", "alphabet"],
    ["QUJDR", "alphabet"],
  ] as const)("%j → %s", (text, want) => {
    const got = decodeBase64(text);
    if (typeof want === "string") expect(got).toBe(want);
    else expect(Buffer.isBuffer(got) && got.equals(want)).toBe(true);
  });

  it("decodes a large file as Buffer does", () => {
    const bytes = Buffer.alloc(3 * 1048576 + 2, 7);
    const got = decodeBase64(bytes.toString("base64").replace(/.{76}/g, "$&\n"));
    expect(Buffer.isBuffer(got) && got.equals(bytes)).toBe(true);
  });
});
