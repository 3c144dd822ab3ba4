// Second LoRaWAN implementation for tests/test_lorawan_*.py: lora-packet (crypto-js AES,
// aes-cmac CMAC). Reads a JSON array of cases on stdin, writes a JSON array of answers.
//   {"op": "open", "phy", "nwk", "app", "fcnt_msb"}   -> fields, MIC verdict, plaintext
//   {"op": "build", "dev_addr", "fcnt", "f_port", "payload", "f_opts", "nwk", "app",
//    "confirmed", "adr", "adr_ack_req", "ack", "class_b"} -> {"phy"}
// Bytes travel as hex; fcnt_msb is the upper 16 bits of the 32-bit FCnt.
"use strict";
const lora = require("lora-packet");

const hex = (b) => Buffer.from(b, "hex");
const msb = (n) => {
  const buf = Buffer.alloc(2);
  buf.writeUInt16LE(n, 0); // appended after the little-endian low 16 bits
  return buf;
};

function open(c) {
  const p = lora.fromWire(hex(c.phy));
  const nwk = hex(c.nwk);
  return {
    mtype: p.getMType(),
    dir: p.getDir(),
    dev_addr: p.DevAddr.toString("hex"),
    fcnt: p.getFCnt(),
    f_port: p.getFPort(),
    f_opts: p.FOpts.toString("hex"),
    adr: p.getFCtrlADR(),
    adr_ack_req: p.getFCtrlADRACKReq(),
    ack: p.getFCtrlACK(),
    bit4: p.getFCtrlFPending(),
    mic: lora.calculateMIC(p, nwk, undefined, msb(c.fcnt_msb)).toString("hex"),
    mic_ok: lora.verifyMIC(p, nwk, undefined, msb(c.fcnt_msb)),
    payload: lora.decrypt(p, hex(c.app), nwk, msb(c.fcnt_msb)).toString("hex"),
  };
}

function build(c) {
  const fcnt = Buffer.alloc(2);
  fcnt.writeUInt16BE(c.fcnt & 0xffff, 0);
  const fields = {
    MType: c.confirmed ? "Confirmed Data Up" : "Unconfirmed Data Up",
    DevAddr: hex(c.dev_addr),
    FCnt: fcnt,
    FCtrl: { ADR: c.adr, ADRACKReq: c.adr_ack_req, ACK: c.ack, FPending: c.class_b },
    FOpts: hex(c.f_opts),
    payload: hex(c.payload),
  };
  if (c.f_port !== null) fields.FPort = c.f_port;
  const upper = msb(Math.floor(c.fcnt / 65536));
  const p = lora.fromFields(fields, hex(c.app), hex(c.nwk), undefined, upper);
  if (c.f_port === null) lora.recalculateMIC(p, hex(c.nwk), undefined, upper); // skipped without FPort
  return { phy: p.getPHYPayload().toString("hex") };
}

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((c) => (c.op === "open" ? open(c) : build(c)));
  process.stdout.write(JSON.stringify(out));
});
