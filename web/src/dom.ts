// Tiny helpers: elements from tagged values (text is always escaped).

export function esc(s: unknown): string {
  return String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function short(h: string, n = 10): string {
  return h && h.length > 2 * n ? `${h.slice(0, n)}…${h.slice(-6)}` : h;
}

export function ago(unixSecs: number): string {
  const d = Math.max(0, Math.round(Date.now() / 1000 - unixSecs));
  return d < 60 ? `${d} s ago` : d < 3600 ? `${Math.floor(d / 60)} min ago` : `${Math.floor(d / 3600)} h ago`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ["KiB", "MiB", "GiB", "TiB"];
  let i = -1;
  do {
    n /= 1024;
    i++;
  } while (n >= 1024 && i < u.length - 1);
  return `${n.toFixed(1)} ${u[i]}`;
}

/** One thing checked in the browser, and what was found. */
export type Check = { ok: boolean; text: string };

export const renderChecks = (checks: Check[], id: string): string =>
  `<ul id="${id}">${checks.map((c) => `<li class="${c.ok ? "ok" : "bad"}">${esc(c.text)}</li>`).join("")}</ul>`;

export function errorBox(e: unknown): string {
  return `<div class="error" role="alert">${esc(e instanceof Error ? e.message : e)}</div>`;
}

export function table(head: string[], rows: string[][], cls = ""): string {
  return `<table class="${cls}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`;
}
