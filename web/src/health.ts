// Network health from the node's Prometheus metrics.

import { esc, table, errorBox } from "./dom";

function parse(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

export async function health(el: HTMLElement): Promise<void> {
  try {
    const [h, text] = await Promise.all([fetch("/health").then((r) => r.json()), fetch("/metrics").then((r) => r.text())]);
    const m = parse(text);
    const rows = [...m.entries()].filter(([k]) => k.startsWith("gradnet_")).slice(0, 60);
    el.innerHTML = `<h1>Network health</h1><p>node <span class="mono">${esc(h.node ?? "")}</span>: ${esc(h.status ?? "ok")}</p>${table(["metric", "value"], rows.map(([k, v]) => [`<span class="mono">${esc(k)}</span>`, esc(v)]), "metrics")}`;
  } catch (e) {
    el.innerHTML = errorBox(e);
  }
}
