/*
 * Living Lab sensor payload formatter (spec: firmware/PAYLOAD.md).
 *
 * Paste as the uplink payload formatter in The Things Stack or as the codec of a
 * ChirpStack v4 device profile. Written in ECMAScript 5 so every LNS script engine
 * runs it; the module.exports guard at the end lets node load it for tests.
 * Errors read "<reason>: <message>", exactly as the Python codec's PayloadError.
 */

var QUANTITIES = [
  "laeq", "lamax", "lamin", "l10", "l50", "l90",
  "pm1", "pm25", "pm10", "no2", "o3",
  "temperature", "humidity", "pressure", "battery"
];

var STATUS_BITS = {
  noise_fault: 1 << 0,
  pm_fault: 1 << 1,
  gas_fault: 1 << 2,
  climate_fault: 1 << 3,
  heater_on: 1 << 4,
  reboot: 1 << 5,
  low_battery: 1 << 6,
  clamped: 1 << 7,
  gas_warmup: 1 << 8,
  noise_overload: 1 << 9
};

var KNOWN_STATUS_BITS = 0x03ff;

// Fields after the version byte: [name, kind, factor, lowest raw, highest raw].
// A field without factor is an unscaled integer (status, firmware).
function noise(name) {
  return [name, "u16", 10, 0, 1950];
}

function ugm3(name) {
  return [name, "u16", 10, 0, 65534];
}

var LAYOUTS = {
  1: [
    ["status", "u8"],
    noise("laeq"), noise("lamax"), noise("lamin"),
    ["pm25", "u16", 1, 0, 999],
    ["pm10", "u16", 1, 0, 999],
    ["temperature", "i16", 10, -400, 850],
    ["humidity", "u8", 2, 0, 200],
    ["battery", "u8", 50, 0, 250]
  ],
  2: [
    ["status", "u16"],
    ["firmware", "u16"],
    noise("laeq"), noise("lamax"), noise("lamin"), noise("l10"), noise("l50"), noise("l90"),
    ugm3("pm1"), ugm3("pm25"), ugm3("pm10"), ugm3("no2"), ugm3("o3"),
    ["temperature", "i16", 100, -4000, 8500],
    ["humidity", "u16", 10, 0, 1000],
    ["pressure", "u16", 10, 3000, 11000],
    ["battery", "u16", 1000, 0, 25000]
  ]
};

var NOT_MEASURED = { u8: 0xff, u16: 0xffff, i16: -0x8000 };

function fieldSize(kind) {
  return kind === "u8" ? 1 : 2;
}

function layoutLength(layout) {
  var length = 1;
  for (var i = 0; i < layout.length; i++) {
    length += fieldSize(layout[i][1]);
  }
  return length;
}

function readRaw(bytes, pos, kind) {
  if (kind === "u8") {
    return bytes[pos];
  }
  var raw = (bytes[pos] << 8) | bytes[pos + 1];
  return kind === "i16" && raw >= 0x8000 ? raw - 0x10000 : raw;
}

function isByteArray(bytes) {
  if (bytes === null || typeof bytes !== "object" || typeof bytes.length !== "number") {
    return false;
  }
  for (var i = 0; i < bytes.length; i++) {
    if (bytes[i] !== (bytes[i] & 0xff)) {
      return false;
    }
  }
  return true;
}

function checkFrame(bytes) {
  if (!isByteArray(bytes)) {
    return "bytes: input.bytes is not an array of bytes";
  }
  if (bytes.length === 0) {
    return "empty: payload has no bytes";
  }
  var layout = LAYOUTS[bytes[0]];
  if (layout === undefined) {
    return "version: unknown payload version " + bytes[0];
  }
  var expected = layoutLength(layout);
  if (bytes.length < expected) {
    return "truncated: " + bytes.length + " bytes, version " + bytes[0] + " needs " + expected;
  }
  if (bytes.length > expected) {
    return "length: " + bytes.length + " bytes, version " + bytes[0] + " has " + expected;
  }
  return null;
}

function statusFlags(status) {
  var flags = [];
  for (var name in STATUS_BITS) {
    if (status & STATUS_BITS[name]) {
      flags.push(name);
    }
  }
  return flags;
}

function decodeUplink(input) {
  var bytes = input && input.bytes;
  var problem = checkFrame(bytes);
  if (problem !== null) {
    return { data: {}, warnings: [], errors: [problem] };
  }
  var data = { version: bytes[0], status: 0, flags: [], firmware: 0 };
  var i;
  for (i = 0; i < QUANTITIES.length; i++) {
    data[QUANTITIES[i]] = null;
  }
  var layout = LAYOUTS[bytes[0]];
  var pos = 1;
  for (i = 0; i < layout.length; i++) {
    var field = layout[i];
    var name = field[0];
    var kind = field[1];
    var raw = readRaw(bytes, pos, kind);
    pos += fieldSize(kind);
    if (field.length === 2) {
      data[name] = raw;
    } else if (raw !== NOT_MEASURED[kind]) {
      if (raw < field[3] || raw > field[4]) {
        var message = name + " raw value " + raw + " outside " + field[3] + ".." + field[4];
        return { data: {}, warnings: [], errors: ["range: " + message] };
      }
      data[name] = raw / field[2];
    }
  }
  data.flags = statusFlags(data.status);
  var warnings = [];
  if (data.status & ~KNOWN_STATUS_BITS) {
    warnings.push("status has reserved bits set: 0x" + (data.status & ~KNOWN_STATUS_BITS).toString(16));
  }
  return { data: data, warnings: warnings, errors: [] };
}

if (typeof module !== "undefined" && module.exports) {
  module.exports = { decodeUplink: decodeUplink, QUANTITIES: QUANTITIES, STATUS_BITS: STATUS_BITS };
}
