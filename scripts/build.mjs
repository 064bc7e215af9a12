// Builds the two bundles with esbuild: dist/houston.js (controller CLI) and dist/houston-agent.js.
// Native better-sqlite3 stays external (it is loaded from node_modules next to the bundle).
import { build } from "esbuild";
import { chmodSync, existsSync } from "node:fs";

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
  });
}
console.log("built dist/");
