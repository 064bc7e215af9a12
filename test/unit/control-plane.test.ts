/**
 * Where the token goes, and names from a config dir that JavaScript objects would misread.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadDeploymentInputs } from "../../controller/config/load.js";
import { loadManifest, type Manifest } from "../../controller/config/manifest.js";
import { consulAddress, makeContext, type GlobalOptions } from "../../controller/context.js";
import { ConfigError } from "../../shared/errors.js";

const manifest = (consul: string | null): Manifest => ({
  file: "/cfg/manifest.yaml",
  environments: { prod: { consul, fleet: null, scheduler: "agents", minHealthy: null } },
  variables: {},
  globalUnits: [],
  standalone: {},
  services: {},
});
const opts = (o: Partial<GlobalOptions> = {}): GlobalOptions => ({
  config: ".",
  environment: "prod",
  prefix: "houston/",
  verbose: false,
  json: false,
  ...o,
});

describe("Consul address precedence: --consul > CONSUL_HTTP_ADDR > manifest > default", () => {
  const cases: [string, Partial<GlobalOptions>, string | null, Record<string, string>, string | RegExp][] = [
    [
      "--consul wins over everything",
      { consul: "https://a:8501" },
      "http://m:8500",
      { CONSUL_HTTP_ADDR: "https://e:8501" },
      "https://a:8501",
    ],
    [
      "the environment wins over the manifest when they agree",
      {},
      "https://e:8501",
      { CONSUL_HTTP_ADDR: "https://e:8501" },
      "https://e:8501",
    ],
    ["the environment alone", {}, null, { CONSUL_HTTP_ADDR: "https://e:8501" }, "https://e:8501"],
    ["the manifest alone", {}, "http://m:8500", {}, "http://m:8500"],
    ["the default", {}, null, {}, "http://127.0.0.1:8500"],
    [
      "manifest and environment disagree: refused, naming both",
      {},
      "http://m:8500",
      { CONSUL_HTTP_ADDR: "https://e:8501" },
      /environments.prod.consul is http:\/\/m:8500 but CONSUL_HTTP_ADDR is https:\/\/e:8501; pass --consul/,
    ],
  ];
  for (const [title, o, m, env, want] of cases) {
    it(title, () => {
      const run = () => consulAddress(opts(o), manifest(m), env).value;
      if (typeof want === "string") expect(run()).toBe(want);
      else expect(run).toThrow(want);
    });
  }
});

describe("the token is never sent over plain http to another host", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });
  it("refuses with a clear message, unless --insecure-token", () => {
    delete process.env.CONSUL_HTTP_ADDR;
    expect(() => makeContext(opts({ consul: "http://consul.prod:8500", token: "secret" }))).toThrow(
      /refusing to send the Consul token over plain http to consul.prod:8500: use an https:\/\/ address .* or pass --insecure-token/,
    );
    expect(() =>
      makeContext(opts({ consul: "http://consul.prod:8500", token: "secret", insecureToken: true })),
    ).not.toThrow();
    expect(() => makeContext(opts({ consul: "http://127.0.0.1:8500", token: "secret" }))).not.toThrow();
    expect(() => makeContext(opts({ consul: "https://consul.prod:8501", token: "secret" }))).not.toThrow();
    process.env.CONSUL_HTTP_TOKEN = "from-env";
    expect(() => makeContext(opts({ consul: "http://10.0.0.5:8500" }))).toThrow(ConfigError);
  });
  const bad: [string, RegExp][] = [
    ["ftp://consul:21", /unsupported scheme ftp/],
    ["", /address is empty/],
    ["http://", /not a Consul address|no host/],
    ["http://u:p@consul:8500", /credentials do not belong/],
    ["http://consul:8500/v1/kv", /no path or query/],
    ["http://consul:99999", /not a Consul address/],
  ];
  for (const [addr, re] of bad) {
    it(`refuses --consul ${JSON.stringify(addr)} as a usage error`, () => {
      const err = (() => {
        try {
          makeContext(opts({ consul: addr }));
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect(String(err)).toMatch(/--consul/);
      expect(String(err)).toMatch(re);
    });
  }
  it("refuses a --prefix outside the allowed shape", () => {
    for (const p of ["/abs/", "a//b/", "../x/", "a b/", ""])
      expect(() => makeContext(opts({ consul: "http://127.0.0.1:8500", prefix: p }))).toThrow(
        /--prefix: .* is not a KV prefix/,
      );
    expect(makeContext(opts({ consul: "http://127.0.0.1:8500", prefix: "team-a/houston" })).kv.prefix).toBe(
      "team-a/houston/",
    );
  });
});

describe("names that are properties of JavaScript objects are ordinary names", () => {
  function dir(files: Record<string, string>): string {
    const d = mkdtempSync(join(tmpdir(), "houston-proto-"));
    for (const [p, t] of Object.entries(files)) {
      mkdirSync(join(d, p, ".."), { recursive: true });
      writeFileSync(join(d, p), t);
    }
    return d;
  }
  it("an environment or stack named toString, constructor or __proto__ is looked up, not inherited", () => {
    const d = dir({
      "manifest.yaml": "environments:\n  prod: {}\nshared-stacks:\n  web: [app:1]\n",
      "units/shared/app.service": "[Service]\nExecStart=/bin/true\n",
    });
    for (const env of ["toString", "constructor", "__proto__", "hasOwnProperty"]) {
      expect(() =>
        loadDeploymentInputs(d, {
          environment: env,
          type: "standalone",
          name: "web",
          version: null,
          group: null,
          dependencies: true,
        }),
      ).toThrow(/environment ".*" is not defined \(known: prod\)/);
    }
    for (const stack of ["constructor", "toString", "valueOf"]) {
      expect(() =>
        loadDeploymentInputs(d, {
          environment: "prod",
          type: "standalone",
          name: stack,
          version: null,
          group: null,
          dependencies: true,
        }),
      ).toThrow(/standalone stack ".*" is not defined/);
    }
  });
  it("an environment really named constructor works like any other", () => {
    const d = dir({
      "manifest.yaml":
        "environments:\n  constructor: {}\nvariables:\n  constructor: {x: 1}\nshared-stacks:\n  toString: [app:1]\n",
      "units/shared/app.service": "[Service]\nExecStart=/bin/echo {x} {valueOf}\n",
    });
    const inputs = loadDeploymentInputs(d, {
      environment: "constructor",
      type: "standalone",
      name: "toString",
      version: null,
      group: null,
      dependencies: true,
    });
    expect(inputs.units[0]?.template.text).toContain("{x}");
    expect(inputs.variables.x).toBe("1");
    expect(Object.hasOwn(loadManifest(d).environments, "constructor")).toBe(true);
  });
  it("an [environment:X] or files environment naming an undefined environment is an error", () => {
    const d = dir({
      "manifest.yaml": "environments:\n  prod: {}\nshared-stacks:\n  web:\n    - 'app:1[environment:staging]'\n",
    });
    expect(() => loadManifest(d)).toThrow(
      /manifest.yaml:5: .*\[environment:staging\] names an environment that is not defined \(known: prod\)/,
    );
    const e = dir({
      "manifest.yaml": "environments:\n  prod: {}\nshared-stacks:\n  web: [app:1]\n",
      "units/shared/app.service": "[Service]\nExecStart=/bin/true\n",
      "files/standalone/web.yaml": "- {path: /a, content: x, environment: prdo}\n",
    });
    expect(() =>
      loadDeploymentInputs(e, {
        environment: "prod",
        type: "standalone",
        name: "web",
        version: null,
        group: null,
        dependencies: true,
      }),
    ).toThrow(/web.yaml:1: 0.environment: environment "prdo" is not defined in the manifest/);
  });
});
