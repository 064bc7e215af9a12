// A build-time patch of dbus-next (1 file, 2 expressions), applied to the agent bundle by build.mjs.
// dbus-next turns every 64-bit D-Bus value into a BigInt by way of the `long` package's toString()
// (a division loop per digit). systemd's PropertiesChanged signals carry several timestamps each,
// and this conversion was ~18% of the agent's CPU while starting 200 units (cpu profile, V8 lite
// mode). The same words become the same BigInt directly. test/unit/dbus-patch.test.ts checks the
// patched reader against the original on edge values. The build fails if dbus-next's code changed.
import { readFileSync } from "node:fs";

const FROM_WORDS = "((BigInt(word1 >>> 0) << 32n) | BigInt(word0 >>> 0))";

export function patchDbusBuffer(source) {
  const signed = "return BigInt(signedLong.toString());";
  const unsigned = "return BigInt(unsignedLong.toString());";
  if (!source.includes(signed) || !source.includes(unsigned))
    throw new Error("dbus-next's dbus-buffer.js changed: review scripts/dbus-next-patch.mjs");
  return source.replace(signed, `return BigInt.asIntN(64, ${FROM_WORDS});`).replace(unsigned, `return ${FROM_WORDS};`);
}

export const dbusNextPatch = {
  name: "dbus-next-bigint",
  setup(build) {
    build.onLoad({ filter: /dbus-next[\\/]lib[\\/]dbus-buffer\.js$/ }, (args) => ({
      contents: patchDbusBuffer(readFileSync(args.path, "utf8")),
      loader: "js",
    }));
  },
};
