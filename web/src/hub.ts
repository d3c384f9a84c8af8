// Model hub: repositories, versions, files; upload with a progress bar;
// a model's declared inputs and outputs, and whether this node runs it
// (under which profiles; per engine, the operators that stop it).

import { api } from "./rpc";
import { esc, table, bytes, errorBox, short } from "./dom";
import { signedPost, uploadHeaders, refused } from "./sign";
import { createData, publishData, registryTx } from "./names";
import { savedKey, hasBrowserWallet, keepKey } from "./wallet";

/** Who signs this page's writes: a pasted key, the browser wallet, or nobody. */
const signer = (): string =>
  `<label id="signer">Account that signs (private key, kept in this tab only${hasBrowserWallet() ? "; empty: your browser wallet" : "; empty: unsigned, for development nodes"}) <input name="key" type="password" autocomplete="off" value="${savedKey().replace(/"/g, "")}" placeholder="0x…" /></label>`;

function takeKey(el: HTMLElement): void {
  keepKey(el.querySelector<HTMLInputElement>("#signer input")?.value ?? "");
}

export async function repos(el: HTMLElement): Promise<void> {
  const list = await api<any[]>("/api/v0/models");
  el.innerHTML = `<h1>Model hub</h1>
  <form id="create" class="row">
    <input name="name" placeholder="new repository name" required />
    <input name="description" placeholder="description" />
    <button>Create</button>
  </form>${signer()}<div id="create-error"></div>
  ${list.length ? table(["repository", "owner", "task", "description"], list.map((r) => [`<a href="#/hub/${encodeURIComponent(r.name)}">${esc(r.name)}</a>`, `<span class="mono">${esc(r.owner ? short(r.owner) : "anyone (development)")}</span>`, esc(r.task), esc(r.description)]), "repos") : `<p class="muted">no repositories yet</p>`}`;
  el.querySelector<HTMLFormElement>("#create")!.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target as HTMLFormElement);
    try {
      takeKey(el);
      const health = await api<any>("/health");
      // a chain node's names are the chain's; only a development node also keeps unsigned local ones
      const account = Boolean(savedKey() || hasBrowserWallet());
      if (health.names === "chain" && (account || !health.dev_mode)) await registryTx(savedKey(), createData(String(f.get("name")), String(f.get("description") ?? "")));
      else await signedPost("/api/v0/models", { name: f.get("name"), description: f.get("description") ?? "" });
      location.hash = `#/hub/${encodeURIComponent(String(f.get("name")))}`;
    } catch (e) {
      el.querySelector("#create-error")!.innerHTML = errorBox(e);
    }
  };
}

export async function repo(el: HTMLElement, name: string): Promise<void> {
  const { repo: info, versions, on_chain: onChain }: { repo: any; versions: any[]; on_chain: boolean } = await api(`/api/v0/models/${encodeURIComponent(name)}`);
  const files = await Promise.all(
    versions.map((v) => api<any[]>(`/api/v0/models/${encodeURIComponent(name)}/versions/${v.versionString}/files`)),
  );
  const latest = versions.at(-1)?.versionString;
  const owner = info.owner ? `owned by <span class="mono" id="owner">${esc(info.owner)}</span>${info.collaborators?.length ? `, collaborators ${info.collaborators.map((c: string) => `<span class="mono">${esc(short(c))}</span>`).join(", ")}` : ""}; only they publish here` : "created unsigned on a development node: anyone may publish";
  el.innerHTML = `<h1>${esc(name)}</h1><p class="muted">${owner}${onChain ? " (registered on chain: every node serves this name)" : ""}</p>${signer()}
  ${onChain
    ? `<form id="publish" class="row"><label>Publish a version on chain: <input type="file" name="files" multiple required /></label><input name="notes" placeholder="release notes" /><label><input type="checkbox" name="major" /> major</label><button>Publish</button></form>`
    : `<form id="version" class="row"><input name="notes" placeholder="release notes" /><button>New version</button></form>
  ${latest ? `<form id="upload" class="row"><label>Upload into ${esc(latest)}: <input type="file" name="file" required /></label><button>Upload</button><progress id="progress" max="100" value="0" hidden></progress></form>` : ""}`}
  <div id="hub-error"></div>
  ${versions.map((v, i) => `<h2>Version ${esc(v.versionString)}</h2>${files[i].length ? table(["file", "size", "content id", ""], files[i].map((f: any) => [esc(f.name), bytes(f.size), `<span class="mono" title="${esc(f.cid)}">${esc(short(f.cid, 14))}</span>`, f.name.endsWith(".onnx") ? `<a href="#/model/${f.cid}">inputs &amp; outputs</a>` : ""]), "files") : `<p class="muted">no files</p>`}`).join("") || `<p class="muted">no versions yet</p>`}`;
  const pub = el.querySelector<HTMLFormElement>("#publish");
  if (pub) pub.onsubmit = async (ev) => {
    ev.preventDefault();
    takeKey(el);
    const f = new FormData(pub);
    try {
      const listed: { name: string; cid: string; size: bigint }[] = [];
      for (const file of Array.from((pub.elements.namedItem("files") as HTMLInputElement).files ?? [])) {
        const path = `/api/v0/blobs?name=${encodeURIComponent(file.name)}`;
        const body = new FormData();
        body.append("file", file, file.name);
        const r = await fetch(path, { method: "POST", headers: await uploadHeaders(path, file), body });
        const up = await r.json();
        if (!r.ok) refused(up.error?.code);
        if (!r.ok) throw new Error(`${up.error?.code ?? r.status}: ${up.error?.message ?? ""}`);
        listed.push({ name: file.name, cid: up.cid, size: BigInt(up.size) });
      }
      await registryTx(savedKey(), publishData(name, f.get("major") === "on", String(f.get("notes") ?? ""), listed));
      await repo(el, name);
    } catch (e) {
      el.querySelector("#hub-error")!.innerHTML = errorBox(e);
    }
  };
  const version = el.querySelector<HTMLFormElement>("#version");
  if (version) version.onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      takeKey(el);
      await signedPost(`/api/v0/models/${encodeURIComponent(name)}/versions`, { notes: new FormData(ev.target as HTMLFormElement).get("notes") ?? "" });
      await repo(el, name);
    } catch (e) {
      el.querySelector("#hub-error")!.innerHTML = errorBox(e);
    }
  };
  const up = el.querySelector<HTMLFormElement>("#upload");
  if (up) up.onsubmit = async (ev) => {
    ev.preventDefault();
    takeKey(el);
    const file = (up.elements.namedItem("file") as HTMLInputElement).files?.[0];
    if (!file) return;
    const bar = el.querySelector<HTMLProgressElement>("#progress")!;
    bar.hidden = false;
    const body = new FormData();
    body.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.upload.onprogress = (p) => p.lengthComputable && (bar.value = (100 * p.loaded) / p.total);
    xhr.onload = async () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        await repo(el, name);
        let report: any = null;
        try {
          report = JSON.parse(xhr.responseText).runtime;
        } catch {}
        if (report && !report.runs_here) el.querySelector("#hub-error")!.innerHTML = `<div class="error">${esc(file.name)} is stored, but this node cannot run it: ${esc(stoppers(report))}</div>`;
        return;
      }
      let msg = xhr.responseText;
      try {
        const e = JSON.parse(msg).error;
        refused(e.code);
        msg = `${e.code}: ${e.message}`;
      } catch {}
      el.querySelector("#hub-error")!.innerHTML = errorBox(msg);
    };
    xhr.onerror = () => (el.querySelector("#hub-error")!.innerHTML = errorBox("upload failed: the node closed the connection"));
    const path = `/api/v0/models/${encodeURIComponent(name)}/versions/${latest}/files?name=${encodeURIComponent(file.name)}`;
    let headers: Record<string, string>;
    try {
      headers = await uploadHeaders(path, file);
    } catch (e) {
      el.querySelector("#hub-error")!.innerHTML = errorBox(e);
      return;
    }
    xhr.open("POST", path);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.send(body);
  };
}

/** What stops a model on each engine that cannot run it. */
function stoppers(report: any): string {
  return (report.engines ?? [])
    .filter((e: any) => !e.runs)
    .map((e: any) => `${e.name} ${e.version}: ${e.unsupported?.length ? "operators it does not support: " + e.unsupported.join(", ") : e.error}`)
    .join("; ");
}

export async function model(el: HTMLElement, cid: string): Promise<void> {
  const r = await api<any>(`/api/v0/signature/${cid}`);
  const s = r.signature ?? {};
  const rt = r.runtime ?? { engines: [], profiles: [] };
  const row = (t: any) => [esc(t.name), esc(t.dtype ?? "unsupported"), esc(JSON.stringify(t.shape ?? "undeclared"))];
  const det = rt.profiles.includes("det-1");
  el.innerHTML = `<h1>Model <span class="mono">${esc(short(cid, 14))}</span></h1>
  <h2>Inputs</h2>${table(["name", "dtype", "shape"], (s.inputs ?? []).map(row), "inputs")}
  <h2>Outputs</h2>${table(["name", "dtype", "shape"], (s.outputs ?? []).map(row), "outputs")}
  <h2>Runs on this node</h2>
  <p id="runs">${rt.runs_here ? '<span class="ok">yes</span>' : '<span class="bad">no</span>'}${rt.profiles.length ? ` — profiles: ${rt.profiles.map(esc).join(", ")}` : ""}. ${det ? "Under det-1 every deterministic node gives the same bits, so QUORUM can compare them." : '<span class="bad">Not under det-1: QUORUM cannot compare its results.</span>'}</p>
  ${table(["engine", "version", "profile", "runs", "what stops it"], rt.engines.map((e: any) => [esc(e.name), esc(e.version), esc(e.profile), e.runs ? '<span class="ok">yes</span>' : '<span class="bad">no</span>', esc(e.unsupported?.length ? "operators: " + e.unsupported.join(", ") : e.error ?? "")]), "engines")}
  <p><a href="#/playground/${cid}">Run it in the playground</a></p>`;
}
