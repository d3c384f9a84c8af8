// Network health from the node's Prometheus metrics, sampled every 2 s:
// request throughput, latency percentiles (from the histogram's buckets)
// and the error rate, as charts of the last two minutes.

import { esc, errorBox } from "./dom";

type Sample = { t: number; requests: number; errors: number; buckets: Map<number, number>; count: number };

function parse(text: string): Sample {
  let requests = 0, errors = 0, count = 0;
  const buckets = new Map<number, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    const name = line.slice(0, i);
    const v = Number(line.slice(i + 1));
    if (name.startsWith("gradnet_http_requests_total")) requests += v;
    else if (name.startsWith("gradnet_http_errors_total")) errors += v;
    else if (name.startsWith("gradnet_http_request_duration_seconds_bucket")) {
      const le = /le="([^"]+)"/.exec(name)?.[1];
      const b = le === "+Inf" ? Infinity : Number(le);
      buckets.set(b, (buckets.get(b) ?? 0) + v);
    } else if (name.startsWith("gradnet_http_request_duration_seconds_count")) count += v;
  }
  return { t: performance.now() / 1000, requests, errors, buckets, count };
}

/** The q-quantile (seconds) of requests between two samples: the upper bound of its bucket. */
function quantile(a: Sample, b: Sample, q: number): number | null {
  const n = b.count - a.count;
  if (n <= 0) return null;
  const bounds = [...b.buckets.keys()].sort((x, y) => x - y);
  for (const le of bounds) {
    if ((b.buckets.get(le)! - (a.buckets.get(le) ?? 0)) >= q * n) return le;
  }
  return null;
}

function chart(id: string, title: string, series: { name: string; values: (number | null)[] }[], unit: string): string {
  const w = 360, h = 120, all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && isFinite(v)));
  const max = Math.max(1e-9, ...all);
  const colors = ["#3b5bdb", "#e8590c", "#c92a2a"];
  const paths = series.map((s, k) => {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || !isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${(i / Math.max(1, s.values.length - 1)) * w},${h - (v / max) * (h - 10)} `;
      pen = true;
    });
    return `<path d="${d}" fill="none" stroke="${colors[k]}" stroke-width="1.5" />`;
  });
  const last = series.map((s, k) => `<span style="color:${colors[k]}">${esc(s.name)} ${fmt(s.values.at(-1) ?? null, unit)}</span>`).join(" · ");
  return `<figure id="${id}"><figcaption>${esc(title)}: ${last}</figcaption><svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}">${paths.join("")}</svg></figure>`;
}

function fmt(v: number | null, unit: string): string {
  if (v === null || !isFinite(v)) return "–";
  return unit === "ms" ? `${(v * 1000).toFixed(v < 0.01 ? 2 : 0)} ms` : unit === "%" ? `${(v * 100).toFixed(1)}%` : `${v.toFixed(1)}${unit}`;
}

export async function health(el: HTMLElement, isCurrent: () => boolean): Promise<void> {
  const h = await fetch("/health").then((r) => r.json());
  el.innerHTML = `<h1>Network health</h1><p>node <span class="mono">${esc(h.node ?? "")}</span>: ${esc(h.status ?? "ok")}</p><div id="charts" class="charts">sampling…</div>`;
  const samples: Sample[] = [];
  while (isCurrent()) {
    try {
      samples.push(parse(await fetch("/metrics").then((r) => r.text())));
      if (samples.length > 61) samples.shift();
      if (samples.length >= 2) {
        const pairs = samples.slice(1).map((b, i) => [samples[i], b] as const);
        const rate = pairs.map(([a, b]) => (b.requests - a.requests) / Math.max(1e-3, b.t - a.t));
        const errRate = pairs.map(([a, b]) => (b.requests > a.requests ? (b.errors - a.errors) / (b.requests - a.requests) : 0));
        const q = (p: number) => pairs.map(([a, b]) => quantile(a, b, p));
        el.querySelector("#charts")!.innerHTML =
          chart("throughput", "Requests per second", [{ name: "requests/s", values: rate }], "/s") +
          chart("latency", "Latency", [{ name: "p50", values: q(0.5) }, { name: "p90", values: q(0.9) }, { name: "p99", values: q(0.99) }], "ms") +
          chart("errors", "Error rate", [{ name: "errors", values: errRate }], "%");
      }
    } catch (e) {
      el.querySelector("#charts")!.innerHTML = errorBox(e);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
