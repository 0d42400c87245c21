/**
 * Spellings of a path, the ways an attacker (or an unlucky client) can write one canonical path:
 * letter case, `;` parameters in any segment, trailing dots and spaces, repeated and trailing
 * slashes, backslashes, percent-encodings of every kind, overlong UTF-8, Unicode look-alikes,
 * dot segments, format suffixes, and mixes of them. Deterministic: the same list every run.
 */

const encodeByte = (byte: number, lower = false) => {
  const hex = byte.toString(16).padStart(2, "0");
  return `%${lower ? hex : hex.toUpperCase()}`;
};
const utf8 = (text: string) => [...new TextEncoder().encode(text)].map((b) => encodeByte(b)).join("");

/** Fullwidth forms (U+FF01-FF5E) of ASCII letters: look-alikes some normalisers fold to ASCII. */
const fullwidth = (ch: string) => {
  const code = ch.charCodeAt(0);
  return code >= 0x21 && code <= 0x7e ? String.fromCodePoint(code - 0x21 + 0xff01) : ch;
};

export interface Spelling {
  path: string;
  /** Which kind of change made it, for the report. */
  kind: string;
}

export function spellingsOf(canonical: string): Spelling[] {
  const segments = canonical.slice(1).split("/");
  const join = (parts: string[]) => `/${parts.join("/")}`;
  const out: Spelling[] = [];
  const add = (kind: string, path: string) => out.push({ kind, path });
  // Each change applies to non-empty segments (the fuzzer stacks spellings on spellings).
  const each = (f: (segment: string, i: number) => string) =>
    segments.map((s, i) => join(segments.map((t, j) => (i === j && s !== "" ? f(s, i) : t))));

  add("canonical", canonical);
  add("upper case", canonical.toUpperCase());
  add("title case", join(segments.map((s) => s.charAt(0).toUpperCase() + s.slice(1))));
  for (const p of each((s) => s.toUpperCase())) add("one segment upper case", p);
  add("mixed case", [...canonical].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join(""));
  for (const p of each((s) => `${s};x=1`)) add("; parameter", p);
  for (const p of each((s) => `${s};`)) add("empty ; parameter", p);
  add("; jsessionid", `${canonical};jsessionid=ABC123`);
  for (const p of each((s) => `${s}.`)) add("trailing dot", p);
  for (const p of each((s) => `${s}..`)) add("trailing dots", p);
  for (const p of each((s) => `${s}%20`)) add("trailing encoded space", p);
  for (const p of each((s) => `${s}. `.replace(" ", "%20"))) add("trailing dot and space", p);
  for (let i = 1; i <= segments.length; i++)
    add("double slash", `/${segments.slice(0, i).join("/")}//${segments.slice(i).join("/")}`.replace(/\/$/, ""));
  add("leading double slash", `/${canonical}`);
  add("trailing slash", `${canonical}/`);
  add("last segment emptied", canonical.replace(/[^/]+$/, ""));
  add("trailing double slash", `${canonical}//`);
  add("backslashes", canonical.replaceAll("/", "\\"));
  for (let i = 1; i < canonical.length; i++)
    if (canonical[i] === "/") add("one backslash", `${canonical.slice(0, i)}\\${canonical.slice(i + 1)}`);
  add("encoded slashes", `/${segments.join("%2F")}`);
  add("encoded slashes, lower hex", `/${segments.join("%2f")}`);
  add("encoded backslashes", `/${segments.join("%5C")}`);
  for (const p of each((s) => `${encodeByte(s.charCodeAt(0))}${s.slice(1)}`)) add("encoded letter", p);
  for (const p of each((s) => `${encodeByte(s.charCodeAt(0), true)}${s.slice(1)}`)) add("encoded letter, lower hex", p);
  add(
    "every letter encoded",
    join(segments.map((s) => [...s].map((c) => encodeByte(c.charCodeAt(0) & 0xff)).join(""))),
  );
  add(
    "double-encoded letter",
    join(
      segments.map((s, i) =>
        i === 0 && s ? `%25${(s.charCodeAt(0) & 0xff).toString(16).toUpperCase()}${s.slice(1)}` : s,
      ),
    ),
  );
  add("overlong slash", `/${segments.join("%C0%AF")}`);
  add("overlong dot-dot", `/x/%C0%AE%C0%AE${canonical}`);
  for (const p of each((s) => `${s.slice(0, -1)}%C1${encodeByte(0x80 | (s.charCodeAt(s.length - 1) & 0x3f))}`))
    add("overlong letter", p);
  for (const p of each((s) => `${utf8(fullwidth(s.charAt(0)))}${s.slice(1)}`)) add("fullwidth look-alike", p);
  for (const p of each((s) => s.replace("i", utf8("ı")))) add("dotless i", p);
  for (const p of each((s) => s.replace("k", utf8("\u212a")))) add("Kelvin sign for k", p);
  add("dot segment before", `/.${canonical}`);
  add("dot-dot from elsewhere", `/public/..${canonical}`);
  add("dot-dot at the end", `${canonical}/x/..`);
  add("encoded dot-dot", `/public/%2E%2E${canonical}`);
  add("encoded dot-dot, lower hex", `/public/%2e%2e${canonical}`);
  add("half-encoded dot-dot", `/public/.%2E${canonical}`);
  add("dot-dot with ; (Tomcat)", `/public/..;${canonical}`);
  add("dot-dot with ;x (Tomcat)", `/public/..;x=1${canonical}`);
  add("dot-dot with trailing dot (IIS)", `/public/...${canonical}`);
  add("format suffix .json", `${canonical}.json`);
  add("format suffix .JSON", `${canonical}.JSON`);
  add("format suffix .xml", `${canonical}.xml`);
  add("encoded NUL", `${canonical}%00`);
  add("encoded newline", `${canonical}%0A`);
  add("encoded tab", `${canonical}%09`);
  add("upper case with ;", `${canonical.toUpperCase()};x=1`);
  add("upper case with trailing dot", `${canonical.toUpperCase()}.`);
  add("upper case with format", `${canonical.toUpperCase()}.json`);
  add("title case with trailing slash", `${join(segments.map((s) => s.charAt(0).toUpperCase() + s.slice(1)))}/`);
  add("; with format", `${canonical};x=1.json`);
  add("format with ;", `${canonical}.json;x=1`);
  return out;
}
