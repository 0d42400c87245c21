import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalisePath, checkSegment, checkSegmentAt, splitRawUrl } from "../../src/path.ts";

describe("canonicalisePath", () => {
  it.each([
    ["/", []],
    ["/api/weather/paris", ["api", "weather", "paris"]],
    ["/api/weather/paris/", ["api", "weather", "paris"]],
    ["/caf%C3%A9", ["caf%C3%A9"]],
    ["/a:b@c;d=e,f!$&'()*+", ["a:b@c;d=e,f!$&'()*+"]],
    ["/100%25", ["100%25"]],
    ["/a%20b/%3F%23", ["a%20b", "%3F%23"]],
    ["/.well-known/x", [".well-known", "x"]],
    ["/...", ["..."]],
  ])("accepts %s", (path, segments) => {
    expect(canonicalisePath(path)).toEqual({ ok: true, path, segments });
  });

  // One named regression per bypass shape.
  it.each([
    ["dot-dot", "/a/../b", "dot_segment"],
    ["dot", "/a/./b", "dot_segment"],
    ["leading dot-dot", "/../b", "dot_segment"],
    ["encoded dot-dot", "/a/%2E%2E/b", "encoded_unreserved"],
    ["encoded dot-dot, lower", "/a/%2e%2e/b", "lowercase_percent"],
    ["half-encoded dot-dot", "/a/.%2E/b", "encoded_unreserved"],
    ["encoded slash", "/a%2Fb", "encoded_separator"],
    ["encoded backslash", "/a%5Cb", "encoded_separator"],
    ["backslash", "/a\\b", "backslash"],
    ["double slash", "/a//b", "empty_segment"],
    ["scheme-relative", "//evil.example/x", "empty_segment"],
    ["two trailing slashes", "/a//", "empty_segment"],
    ["malformed percent", "/a%G1", "malformed_percent"],
    ["truncated percent", "/a%4", "malformed_percent"],
    ["bare percent", "/a%", "malformed_percent"],
    ["overlong UTF-8 dot", "/%C0%AE", "invalid_utf8"],
    ["overlong UTF-8 slash", "/%C0%AF", "invalid_utf8"],
    ["lone continuation byte", "/%80", "invalid_utf8"],
    ["encoded surrogate", "/%ED%A0%80", "invalid_utf8"],
    ["encoded NUL", "/a%00", "encoded_control"],
    ["encoded DEL", "/a%7F", "encoded_control"],
    ["raw control byte", "/a\x01", "illegal_character"],
    ["raw space", "/a b", "illegal_character"],
    ["raw non-ASCII", "/café", "illegal_character"],
    ["encoded letter", "/w%65ather", "encoded_unreserved"],
    ["encoded tilde", "/%7Euser", "encoded_unreserved"],
    ["encoded sub-delim", "/a%3Bb", "encoded_unreserved"],
    ["relative", "a/b", "not_absolute"],
  ])("refuses %s", (_name, path, problem) => {
    expect(canonicalisePath(path)).toEqual({ ok: false, problem });
  });

  const RAW_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@";
  /** The one canonical spelling of a decoded segment. */
  const canonical = (decoded: string) =>
    [...new TextEncoder().encode(decoded)]
      .map((b) =>
        b < 128 && RAW_SAFE.includes(String.fromCharCode(b))
          ? String.fromCharCode(b)
          : `%${b.toString(16).toUpperCase().padStart(2, "0")}`,
      )
      .join("");
  const decodedSegment = fc
    .string({ unit: "grapheme", minLength: 1, maxLength: 12 })
    .filter(
      (s) => s !== "." && s !== ".." && !s.includes("/") && !s.includes("\\") && !/[\u0000-\u001f\u007f]/.test(s),
    );

  it("accepts the canonical spelling of any path, with its segments intact", () => {
    fc.assert(
      fc.property(fc.array(decodedSegment, { maxLength: 6 }), (decoded) => {
        const segments = decoded.map(canonical);
        const result = canonicalisePath(`/${segments.join("/")}`);
        expect(result).toEqual({ ok: true, path: `/${segments.join("/")}`, segments });
      }),
    );
  });

  it("accepts only paths that are their own canonical spelling (one spelling per path)", () => {
    const alphabet = fc.constantFrom(..."aZ09-._~%/\\:@!2EFf5Cc3B".split(""));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 24 }), (chars) => {
        const path = `/${chars.join("")}`;
        const result = canonicalisePath(path);
        if (!result.ok) return;
        for (const segment of result.segments) {
          expect(canonical(decodeURIComponent(segment))).toBe(segment);
          expect([".", ".."]).not.toContain(decodeURIComponent(segment));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("checkSegmentAt", () => {
  it("judges a range of a longer string exactly as checkSegment judges that slice", () => {
    const alphabet = fc.constantFrom(..."aZ09-._~%/\\:@ 2EFf5Cc3B".split(""));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 16 }), fc.nat(16), fc.nat(16), (chars, a, b) => {
        const text = chars.join("");
        const [start, end] = [Math.min(a, b, text.length), Math.min(Math.max(a, b), text.length)];
        expect(checkSegmentAt(text, start, end)).toBe(checkSegment(text.slice(start, end)));
      }),
      { numRuns: 3000 },
    );
  });
});

describe("splitRawUrl", () => {
  it.each([
    ["https://h.example/a/b?x=1#frag", "/a/b", "?x=1"],
    ["https://h.example/a/../b", "/a/../b", ""],
    ["https://h.example", "/", ""],
    ["http://h.example:8080/a?b?c", "/a", "?b?c"],
  ])("splits %s", (url, path, query) => {
    expect(splitRawUrl(url)).toEqual({ path, query });
  });
});
