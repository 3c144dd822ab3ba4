// Cross-check driver: one payload in hex per stdin line -> one decodeUplink() result as
// JSON per stdout line. The Python test suite feeds it payloads from the C encoder.
"use strict";
const { decodeUplink } = require("../formatter.js");

const lines = require("node:fs").readFileSync(0, "utf8").split("\n").filter((l) => l !== "");
process.stdout.write(
  lines
    .map((hex) => JSON.stringify(decodeUplink({ bytes: Array.from(Buffer.from(hex, "hex")), fPort: 1 })))
    .join("\n") + "\n",
);
