// Network health as charts: request throughput, latency percentiles (from
// the histogram's buckets) and the error rate, either live (the node's
// Prometheus metrics sampled every 2 s while the page is open) or over the
// last 15 minutes, hour or day (the node's own sampled history). The
// charts' own polling is left out.

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
    if (/route="(\/metrics|\/health|\/api\/v0\/metrics\/history)"/.test(name)) continue;
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

/** The q-quantile (seconds) of requests between two samples, interpolated
 *  inside its bucket (as Prometheus' histogram_quantile and the node's history). */
function quantile(a: Sample, b: Sample, q: number): number | null {
  const n = b.count - a.count;
  if (n <= 0) return null;
  const rank = q * n;
  let lower = 0, below = 0;
  for (const le of [...b.buckets.keys()].sort((x, y) => x - y)) {
    const c = b.buckets.get(le)! - (a.buckets.get(le) ?? 0);
    if (c >= rank) return isFinite(le) ? lower + ((le - lower) * (rank - below)) / Math.max(1, c - below) : lower;
    lower = le;
    below = c;
  }
  return lower;
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
  return `<figure id="${id}"><figcaption>${esc(title)}: ${last}</figcaption><svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}"><text x="2" y="10" font-size="9" fill="#868e96">max ${esc(fmt(max, unit))}</text>${paths.join("")}</svg></figure>`;
}

function fmt(v: number | null, unit: string): string {
  if (v === null || !isFinite(v)) return "–";
  return unit === "ms" ? `${(v * 1000).toFixed(v < 0.01 ? 2 : 0)} ms` : unit === "%" ? `${(v * 100).toFixed(1)}%` : `${v.toFixed(1)}${unit}`;
}

const charts = (rate: number[], q: (p: number) => (number | null)[], errRate: (number | null)[]): string =>
  chart("throughput", "Requests per second", [{ name: "requests/s", values: rate }], "/s") +
  chart("latency", "Latency", [{ name: "p50", values: q(0.5) }, { name: "p90", values: q(0.9) }, { name: "p99", values: q(0.99) }], "ms") +
  chart("errors", "Error rate", [{ name: "errors", values: errRate }], "%");

export async function health(el: HTMLElement, isCurrent: () => boolean): Promise<void> {
  const h = await fetch("/health").then((r) => r.json());
  el.innerHTML = `<h1>Network health</h1><p>node <span class="mono">${esc(h.node ?? "")}</span>: ${esc(h.status ?? "ok")}</p>
  <label>Window <select id="window">
    <option value="live">live: every 2 s while this page is open</option>
    <option value="15m">last 15 minutes</option>
    <option value="1h">last hour</option>
    <option value="24h">last 24 hours</option>
  </select></label> <span id="span" class="muted"></span>
  <div id="charts" class="charts">sampling…</div>`;
  const select = el.querySelector<HTMLSelectElement>("#window")!;
  const samples: Sample[] = [];
  let wake = () => {};
  select.onchange = () => wake();
  while (isCurrent()) {
    try {
      // live samples are kept whatever is shown, so switching back loses nothing
      samples.push(parse(await fetch("/metrics").then((r) => r.text())));
      if (samples.length > 61) samples.shift();
      if (select.value !== "live") {
        const r = await fetch(`/api/v0/metrics/history?window=${select.value}`).then((r) => r.json());
        const p: any[] = r.points ?? [];
        el.querySelector("#span")!.textContent = `${p.length} intervals of ${r.step_secs} s`;
        el.querySelector("#charts")!.innerHTML = p.length
          ? charts(p.map((x) => x.requests_per_sec), (q) => p.map((x) => (q === 0.5 ? x.p50 : q === 0.9 ? x.p90 : x.p99)), p.map((x) => x.error_rate))
          : `<p class="muted">no history yet</p>`;
      } else if (samples.length >= 2) {
        const pairs = samples.slice(1).map((b, i) => [samples[i], b] as const);
        el.querySelector("#span")!.textContent = `${pairs.length} intervals of 2 s`;
        el.querySelector("#charts")!.innerHTML = charts(
          pairs.map(([a, b]) => (b.requests - a.requests) / Math.max(1e-3, b.t - a.t)),
          (p) => pairs.map(([a, b]) => quantile(a, b, p)),
          pairs.map(([a, b]) => (b.requests > a.requests ? (b.errors - a.errors) / (b.requests - a.requests) : 0)),
        );
      }
    } catch (e) {
      el.querySelector("#charts")!.innerHTML = errorBox(e);
    }
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, 2000);
    });
  }
}
