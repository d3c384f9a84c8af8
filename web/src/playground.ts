// Playground: run an ONNX model on a JSON input and show the output and
// its signed receipt (the API's error message when the input is wrong).

import { api } from "./rpc";
import { esc, errorBox } from "./dom";

export function playground(el: HTMLElement, model = ""): void {
  el.innerHTML = `<h1>Playground</h1>
  <form id="run">
    <label>Model (content id or repo@version/file) <input name="model" value="${esc(model)}" required /></label>
    <label>Inputs (JSON) <textarea name="inputs" rows="6">{"x": [[0.5, -1.0, 2.5, 3.0]]}</textarea></label>
    <button>Run</button>
  </form>
  <div id="result"></div>`;
  el.querySelector<HTMLFormElement>("#run")!.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target as HTMLFormElement);
    const out = el.querySelector("#result")!;
    let inputs: unknown;
    try {
      inputs = JSON.parse(String(f.get("inputs")));
    } catch (e) {
      out.innerHTML = errorBox(`the inputs are not valid JSON: ${(e as Error).message}`);
      return;
    }
    out.innerHTML = "running…";
    try {
      const r = await api<any>("/v1/infer", { model: f.get("model"), inputs });
      out.innerHTML = `<h2>Outputs</h2><pre id="outputs">${esc(JSON.stringify(r.outputs, null, 1))}</pre><h2>Receipt</h2><pre id="receipt">${esc(JSON.stringify(r.receipt, null, 1))}</pre>`;
    } catch (e) {
      out.innerHTML = errorBox(e);
    }
  };
}
