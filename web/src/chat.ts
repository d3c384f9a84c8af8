// Chat with an LLM in the hub, tokens shown as they stream (the node's
// OpenAI-compatible /v1/chat/completions with server-sent events).

import { esc, errorBox } from "./dom";

export function chat(el: HTMLElement, model = ""): void {
  el.innerHTML = `<h1>Chat</h1>
  <form id="chat">
    <label>Model (hub repository or content id) <input name="model" value="${esc(model)}" required /></label>
    <label>Message <textarea name="message" rows="3">Hi!</textarea></label>
    <label>Max tokens <input name="max_tokens" type="number" value="32" min="1" max="2048" /></label>
    <button>Send</button>
  </form>
  <div id="answer-box"><pre id="answer"></pre><p id="finish" class="muted"></p></div>`;
  el.querySelector<HTMLFormElement>("#chat")!.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target as HTMLFormElement);
    const answer = el.querySelector("#answer")!;
    const finish = el.querySelector("#finish")!;
    answer.textContent = "";
    finish.textContent = "";
    el.querySelector(".error")?.remove();
    try {
      const r = await fetch("/v1/chat/completions", {
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
      let buf = "", chunks = 0;
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
            answer.textContent += delta;
            chunks++;
            answer.setAttribute("data-chunks", String(chunks));
          }
          const reason = c.choices?.[0]?.finish_reason;
          if (reason) finish.textContent = `finished: ${reason} (${chunks} chunks streamed)`;
        }
      }
    } catch (e) {
      el.querySelector("#answer-box")!.insertAdjacentHTML("beforebegin", errorBox(e));
    }
  };
}
