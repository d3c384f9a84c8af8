// Chat with an LLM in the hub: on this node, tokens shown as they stream
// (the OpenAI-compatible /v1/chat/completions with server-sent events)
// with the node's signed receipt, its output hash recomputed here and its
// signature checked here; or through the chain (runLLMChat in VANILLA or
// TEE mode), the answer read from the block.

import { esc, errorBox, renderChecks } from "./dom";
import { api } from "./rpc";
import { llmOutputHash } from "./hashes";
import { hashCheck, showVerdict } from "./receipt";
import { MODES, chatCall, decodeChat } from "./onchain";
import { accountField, toggleAccount } from "./wallet";
import { paidFetch } from "./pay";
import { callOnChain } from "./chaincall";

export function chat(el: HTMLElement, model = ""): void {
  el.innerHTML = `<h1>Chat</h1>
  <form id="chat">
    <label>Model (hub repository or content id) <input name="model" value="${esc(model)}" required /></label>
    <label>Message <textarea name="message" rows="3">Hi!</textarea></label>
    <label>Max tokens <input name="max_tokens" type="number" value="32" min="1" max="2048" /></label>
    <label>Mode <select name="mode">
      <option value="node">VANILLA on this node: streamed, with its signed receipt</option>
      <option value="VANILLA">VANILLA on chain: one staked node, the answer in a block</option>
      <option value="TEE">TEE on chain: an attested enclave</option>
    </select></label>
    ${accountField()}
    <button>Send</button>
  </form>
  <div id="answer-box"><pre id="answer"></pre><p id="finish" class="muted"></p></div><div id="chat-receipt-box"></div>`;
  toggleAccount(el, el.querySelector<HTMLSelectElement>("select[name=mode]")!);
  el.querySelector<HTMLFormElement>("#chat")!.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target as HTMLFormElement);
    const answer = el.querySelector<HTMLElement>("#answer")!;
    const finish = el.querySelector("#finish")!;
    const below = el.querySelector<HTMLElement>("#chat-receipt-box")!;
    answer.textContent = "";
    answer.removeAttribute("data-chunks");
    finish.textContent = "";
    below.innerHTML = "";
    el.querySelector(".error")?.remove();
    const mode = String(f.get("mode"));
    if (mode !== "node") {
      let data;
      try {
        const cid = await contentId(String(f.get("model")));
        data = chatCall(MODES[mode], cid, String(f.get("message")), Number(f.get("max_tokens")));
      } catch (e) {
        below.innerHTML = errorBox(e);
        return;
      }
      return callOnChain(below, String(f.get("key") ?? ""), data, (logged) => {
        const r = decodeChat(logged);
        answer.textContent = r.content;
        finish.textContent = `finished: ${r.finish} (read from the block)`;
        return "";
      });
    }
    try {
      const { text, reason, receipt } = await stream(f, answer, finish);
      if (receipt) showReceipt(below, receipt, text, reason);
    } catch (e) {
      el.querySelector("#answer-box")!.insertAdjacentHTML("beforebegin", errorBox(e));
    }
  };
}

/** The content id a call on chain names: a repository's latest GGUF file in this node's hub (a content id or `repo@version/file` as is). */
async function contentId(model: string): Promise<string> {
  if (/^b3[a-z2-7]{52}$/.test(model) || model.includes("@")) return model;
  const name = encodeURIComponent(model);
  const latest = (await api<any[]>(`/api/v0/models/${name}/versions`)).at(-1)?.versionString;
  const file = latest && (await api<any[]>(`/api/v0/models/${name}/versions/${latest}/files`)).find((x) => x.name.endsWith(".gguf"));
  if (!file) throw new Error(`no GGUF file in the latest version of ${model}`);
  return file.cid;
}

/** Streams the answer into `answer`; the whole text, why it ended and the receipt. */
async function stream(f: FormData, answer: HTMLElement, finish: Element): Promise<{ text: string; reason: string; receipt: any }> {
  const r = await paidFetch("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: f.get("model"),
      messages: [{ role: "user", content: f.get("message") }],
      max_tokens: Number(f.get("max_tokens")),
      temperature: 0,
      stream: true,
    }),
  });
  if (!r.ok || !r.body) {
    const e = (await r.json().catch(() => ({})))?.error;
    throw new Error(e ? `${e.code}: ${e.message}` : `${r.status}`);
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "", chunks = 0, text = "", reason = "", receipt: any = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = event.replace(/^data: ?/, "");
      if (data === "[DONE]") continue;
      const c = JSON.parse(data);
      const delta = c.choices?.[0]?.delta?.content;
      if (delta) {
        text += delta;
        answer.textContent = text;
        answer.setAttribute("data-chunks", String(++chunks));
      }
      if (c.choices?.[0]?.finish_reason) {
        reason = c.choices[0].finish_reason;
        finish.textContent = `finished: ${reason} (${chunks} chunks streamed)`;
      }
      if (c.gradnet_receipt) receipt = c.gradnet_receipt;
      if (c.gradnet_output !== undefined) text = c.gradnet_output;
    }
  }
  return { text, reason, receipt };
}

/** The node's receipt, its output hash recomputed from the streamed text, and a verify button. */
function showReceipt(box: HTMLElement, receipt: any, text: string, reason: string): void {
  const output = hashCheck("output hash", " from the streamed text", llmOutputHash(text, reason), receipt.output_hash);
  box.innerHTML = `<h2>Receipt</h2><pre id="chat-receipt">${esc(JSON.stringify(receipt, null, 1))}</pre>
    ${renderChecks([output], "chat-hash")}
    <p class="muted">The request hash covers the prompt as the model's chat template renders it, with the sampling settings.</p>
    <button id="chat-verify">Verify the signature</button> <span id="chat-verdict"></span>`;
  box.querySelector<HTMLButtonElement>("#chat-verify")!.onclick = () => showVerdict(box.querySelector("#chat-verdict")!, receipt);
}
