#!/usr/bin/env node
/** Entry point of the `houston` CLI bundle. */
import { main } from "./cli.js";

// a reader that went away (`houston status | head -1`) is not an error: what follows is not
// printed, the command itself carries on (a deploy is never abandoned half-way for it)
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE" && err.code !== "ERR_STREAM_DESTROYED") throw err;
  });

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
