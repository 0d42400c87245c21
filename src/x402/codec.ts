/**
 * Header codecs for x402: base64 of UTF-8 JSON, both ways. Pure.
 * Decoding is strict (standard base64 alphabet, correct padding, valid UTF-8, size-capped) and
 * returns `unknown`: the caller runs a schema over it, never a cast.
 */
import { MAX_PAYMENT_HEADER_BYTES } from "../constants.ts";

export type Decoded =
  | { ok: true; value: unknown }
  | { ok: false; problem: "too_large" | "not_base64" | "not_utf8" | "not_json" };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const ENCODER = new TextEncoder();
/** Nothing but ASCII, whose UTF-8 bytes are its characters. */
const ASCII = /^[\x00-\x7f]*$/;

export function decodeHeaderJson(header: string, maxBytes = MAX_PAYMENT_HEADER_BYTES): Decoded {
  if (header.length > maxBytes) return { ok: false, problem: "too_large" };
  const trimmed = header.trim();
  if (trimmed === "" || !BASE64.test(trimmed)) return { ok: false, problem: "not_base64" };
  let binary: string;
  try {
    binary = atob(trimmed);
  } catch {
    return { ok: false, problem: "not_base64" };
  }
  let text = binary;
  // ASCII bytes are their own UTF-8 text; anything else is decoded strictly.
  if (!ASCII.test(binary)) {
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    try {
      text = UTF8.decode(bytes);
    } catch {
      return { ok: false, problem: "not_utf8" };
    }
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, problem: "not_json" };
  }
}

export function encodeHeaderJson(value: unknown): string {
  const json = JSON.stringify(value);
  // The usual case (addresses, amounts, hashes): btoa's Latin-1 bytes are already the UTF-8 ones.
  if (ASCII.test(json)) return btoa(json);
  const bytes = ENCODER.encode(json);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
