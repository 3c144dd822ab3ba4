// Cross-check driver: one payload in hex per stdin line (an empty line is an empty
// payload) -> one decodeUplink() result as JSON per stdout line.
"use strict";
const { decodeUplink } = require("../formatter.js");

const lines = require("node:fs").readFileSync(0, "utf8").split("\n");
lines.pop(); // the text after the last newline
for (const hex of lines) {
  const bytes = Array.from(Buffer.from(hex, "hex"));
  process.stdout.write(JSON.stringify(decodeUplink({ bytes, fPort: 1 })) + "\n");
}
