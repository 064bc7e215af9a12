/**
 * The command lines users type, through the built CLI: the seed's forms and Houston's own options
 * anywhere on the line. Each must parse: it gets as far as Consul (the address given is closed, so a
 * command that parsed exits 3 "unreachable"), or a flag's own check names the flag (exit 2) — proof
 * the flag reached its command. A parse failure would be exit 2 "unknown command/option".
 */
import { describe, expect, it } from "vitest";
import { configDir, houston } from "../helpers/cli.js";

const CLOSED = "http://127.0.0.1:1";
const base = {
  "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  web: [app:1]\nshared-units:\n  hello: [app:1]\n",
  "units/shared/app.service": "[Service]\nExecStart=/bin/true\n",
  "units/service/hello.service": "[Service]\nExecStart=/bin/true\n",
  "units/global/beacon.service": "[Service]\nExecStart=/bin/true\n",
};

const reachConsul: [string, string[]][] = [
  ["the bare form with an option after it", ["hello", "4", "--min-healthy", "3"]],
  ["the bare form with the seed's flags around it", ["-d", "1", "hello", "4", "-m", "2", "--no-dependencies", "-s"]],
  ["the bare form with -n", ["hello", "4", "-n"]],
  ["service with Houston's options after the words", ["service", "hello", "4", "--json", "-v", "--timeout", "30"]],
  ["service with the seed's flags before the command", ["-d", "1", "-m", "2", "-s", "service", "hello", "4"]],
  ["global with the seed's flags", ["global", "-d", "1", "-m", "2", "-n"]],
  ["standalone with the seed's flags", ["-s", "standalone", "web", "--no-dependencies", "-d", "2"]],
  ["a removal in the seed's form", ["hello", "4", "--remove"]],
  ["status with --json after the stack", ["status", "web", "--json"]],
];

const flagChecked: [string, string[], RegExp][] = [
  ["the bare form's trailing option reaches service", ["hello", "4", "--min-healthy", "-5"], /--min-healthy must be/],
  ["a trailing -d reaches standalone", ["standalone", "web", "-d", "0"], /--delay must be a positive/],
  ["a leading -m reaches global", ["-m", "x", "global"], /--max-tries must be a positive/],
];

describe("command lines parse as users type them", () => {
  for (const [title, args] of reachConsul)
    it(title, async () => {
      const r = await houston(CLOSED, configDir(base), ...args);
      expect(r.stderr).not.toMatch(/unknown (command|option)|error: /);
      expect(r.stderr).toMatch(/unreachable/);
      expect(r.code, r.stderr).toBe(3);
    });
  for (const [title, args, err] of flagChecked)
    it(title, async () => {
      const r = await houston(CLOSED, configDir(base), ...args);
      expect(r.stderr).toMatch(err);
      expect(r.code, r.stderr).toBe(2);
    });
  it("a bare word that is not NAME VERSION is still refused as a command", async () => {
    const r = await houston(CLOSED, configDir(base), "statsu");
    expect(r.stderr).toMatch(/unknown command 'statsu'/);
    expect(r.code).toBe(2);
  });
});
