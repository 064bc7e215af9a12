#!/usr/bin/env node
/** Entry point of the `houston` CLI bundle. */
import { main } from "./cli.js";

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
