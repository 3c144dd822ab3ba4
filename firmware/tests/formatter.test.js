// node --test firmware/tests/: the formatter against test-vectors.json, loaded both
// through require() and as a bare LNS script in an empty sandbox.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const root = path.join(__dirname, "..");
const source = fs.readFileSync(path.join(root, "formatter.js"), "utf8");
const { vectors, quantities } = JSON.parse(
  fs.readFileSync(path.join(root, "test-vectors.json"), "utf8"),
);

function sandboxed() {
  const context = vm.createContext({}); // no module, require, Buffer or console
  vm.runInContext(source, context);
  return context.decodeUplink;
}

const loaders = { require: () => require("../formatter.js").decodeUplink, sandbox: sandboxed };

for (const [how, load] of Object.entries(loaders)) {
  test(`vectors via ${how}`, () => {
    const decodeUplink = load();
    for (const v of vectors) {
      const bytes = Array.from(Buffer.from(v.hex, "hex"));
      const out = JSON.parse(JSON.stringify(decodeUplink({ bytes, fPort: 1 })));
      if (v.error) {
        assert.deepEqual(out.errors, [v.error.message], v.name);
        continue;
      }
      assert.deepEqual(out.errors, [], v.name);
      const want = { version: v.decoded.version, status: v.decoded.status,
        flags: v.decoded.flags, firmware: v.decoded.firmware, ...v.decoded.values };
      assert.deepEqual(out.data, want, v.name);
      assert.equal(Object.keys(out.data).length, 4 + quantities.length);
    }
  });
}

test("reserved status bits are passed on with a warning", () => {
  const { decodeUplink } = require("../formatter.js");
  const v = vectors.find((x) => x.name === "reserved status bits pass through");
  const out = decodeUplink({ bytes: Array.from(Buffer.from(v.hex, "hex")), fPort: 1 });
  assert.equal(out.data.status, 0xfc00);
  assert.deepEqual(out.warnings, ["status has reserved bits set: 0xfc00"]);
});

test("input that is not a byte array is an error, not a crash", () => {
  const { decodeUplink } = require("../formatter.js");
  for (const bytes of [undefined, null, "0200", [2, 256], [2, -1], [2, 1.5], { length: 1 }]) {
    const out = decodeUplink({ bytes, fPort: 1 });
    assert.deepEqual(out.errors, ["bytes: input.bytes is not an array of bytes"], String(bytes));
  }
  assert.deepEqual(decodeUplink(undefined).errors, ["bytes: input.bytes is not an array of bytes"]);
  assert.deepEqual(decodeUplink({ bytes: new Uint8Array([7]) }).errors,
    ["version: unknown payload version 7"]);
});
