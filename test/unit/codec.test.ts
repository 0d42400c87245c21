import fc from "fast-check";
import { expect, it } from "vitest";
import { decodeHeaderJson, encodeHeaderJson } from "../../src/x402/codec.ts";

it("round-trips any JSON value, including non-ASCII text", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const decoded = decodeHeaderJson(encodeHeaderJson(value), 1 << 20);
      expect(decoded).toEqual({ ok: true, value: JSON.parse(JSON.stringify(value)) });
    }),
  );
});

it("agrees with Node's base64 for what it encodes", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      expect(encodeHeaderJson(value)).toBe(Buffer.from(JSON.stringify(value), "utf8").toString("base64"));
    }),
  );
});

it.each([
  ["", "not_base64"],
  ["abc", "not_base64"],
  ["ab=c", "not_base64"],
  ["YWJj\u0000", "not_base64"],
  ["eyJ-IjoxfQ", "not_base64"],
  [btoa("{nope"), "not_json"],
  [btoa("\xc0\xae"), "not_utf8"],
])("refuses %j (%s)", (header, problem) => {
  expect(decodeHeaderJson(header)).toEqual({ ok: false, problem });
});

it("refuses anything over the size cap before decoding it", () => {
  expect(decodeHeaderJson("A".repeat(8193))).toEqual({ ok: false, problem: "too_large" });
  expect(decodeHeaderJson(encodeHeaderJson({ a: "x".repeat(6000) })).ok).toBe(true);
});

it("never throws, whatever the input", () => {
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => void decodeHeaderJson(s)));
});
