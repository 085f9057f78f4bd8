#!/usr/bin/env node
// `cue` on the command line through the shipped evaluator: `node cue.js export file.cue`.
"use strict";
const { cue } = require("./run.js");

cue(process.argv.slice(2)).then((result) => {
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.code;
});
