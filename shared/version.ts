/** Houston's version, from package.json (bundled into both CLIs at build time). */
import pkg from "../package.json" with { type: "json" };

export const HOUSTON_VERSION: string = pkg.version;
