// Builds the two bundles with esbuild: dist/houston.js (controller CLI) and dist/houston-agent.js.
// Native better-sqlite3 stays external (it is loaded from node_modules next to the bundle).
import { build } from "esbuild";
import { dbusNextPatch } from "./dbus-next-patch.mjs";
import { chmodSync, existsSync, writeFileSync } from "node:fs";

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: true,
  logLevel: "warning",
  banner: {
    js: "import { createRequire as __houstonRequire } from 'node:module'; const require = __houstonRequire(import.meta.url);",
  },
};
await build({ ...common, entryPoints: ["controller/main.ts"], outfile: "dist/houston.js", banner: common.banner });
chmodSync("dist/houston.js", 0o755);
if (existsSync("agent/main.ts")) {
  await build({
    ...common,
    entryPoints: ["agent/main.ts"],
    outfile: "dist/houston-agent.js",
    external: ["better-sqlite3", "x11", "usocket"],
    // dbus-next's introspection, unused by the agent (see agent/no-xml2js.ts)
    alias: { xml2js: "./agent/no-xml2js.ts" },
    plugins: [dbusNextPatch],
  });
}
// both bundles are ES modules: said here, so that Node does not first try them as CommonJS
// (detecting the syntax parses a bundle twice: measurably more memory for the agent)
writeFileSync("dist/package.json", '{ "type": "module" }\n');
console.log("built dist/");
