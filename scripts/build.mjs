// Builds the two bundles with esbuild: dist/houston.js (controller CLI) and dist/houston-agent.js.
// Native better-sqlite3 stays external (it is loaded from node_modules next to the bundle).
import { build } from "esbuild";
import { dbusNextPatch } from "./dbus-next-patch.mjs";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

// Both bundles are CommonJS, not ES modules, for the agent's memory (docs/benchmarks.md): on Node 24
// an ES module entry costs 3.6 MB of the ESM loader, and a named import from a built-in module
// reads every export, which runs its lazy getters (one of node:http's loads undici, with http2 and
// perf_hooks): 6 MB of the agent's idle RSS in all.
// The consul package requires node:https at load; it is used only for an https Consul. Packages get
// a stand-in whose properties load node:https when first read (with tls: about 2 MB of the agent's
// memory on a host whose local Consul speaks plain http). Our own code loads it where it needs it.
const lazyHttps = {
  name: "lazy-https",
  setup(b) {
    b.onResolve({ filter: /^https$/ }, () => ({ path: "https", namespace: "lazy-builtin" }));
    b.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => {
      const names = Object.keys(createRequire(import.meta.url)(`node:${args.path}`));
      const getters = names.map((n) => `get ${JSON.stringify(n)}() { return load()[${JSON.stringify(n)}]; }`);
      return {
        contents: `let m; const load = () => (m ??= require("node:${args.path}"));\nmodule.exports = { ${getters.join(", ")} };\n`,
        loader: "js",
      };
    });
  },
};

// shared/version.ts imports package.json for the version: the bundles get that field, not the
// whole file (scripts, dependencies and the rest stay out of every agent's memory)
const versionOnly = {
  name: "version-only",
  setup(b) {
    const file = fileURLToPath(new URL("../package.json", import.meta.url));
    b.onLoad({ filter: /[\\/]package\.json$/ }, (args) =>
      args.path === file
        ? { contents: JSON.stringify({ version: JSON.parse(readFileSync(file, "utf8")).version }), loader: "json" }
        : undefined,
    );
  },
};

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: true,
  logLevel: "warning",
  plugins: [lazyHttps, versionOnly],
};
await build({ ...common, entryPoints: ["controller/main.ts"], outfile: "dist/houston.js" });
chmodSync("dist/houston.js", 0o755);
if (existsSync("agent/main.ts")) {
  await build({
    ...common,
    entryPoints: ["agent/main.ts"],
    outfile: "dist/houston-agent.js",
    // V8 keeps the agent's source in memory for as long as it runs: without comments and
    // indentation it is a third smaller, and all ASCII (one byte a character instead of two)
    minifyWhitespace: true,
    external: ["better-sqlite3", "x11", "usocket"],
    // dbus-next's introspection, unused by the agent (see agent/no-xml2js.ts)
    alias: { xml2js: "./agent/no-xml2js.ts" },
    plugins: [lazyHttps, versionOnly, dbusNextPatch],
  });
}
// said here, so that Node does not first try the bundles as ES modules (the repository's
// package.json says "module"; detecting the syntax would parse a bundle twice)
writeFileSync("dist/package.json", '{ "type": "commonjs" }\n');
console.log("built dist/");
