// The console: a hash router over the explorer, hub, playground and health.

import "./style.css";
import * as explorer from "./explorer";
import * as hub from "./hub";
import { playground } from "./playground";
import { health } from "./health";
import { chat } from "./chat";
import { network } from "./network";
import { errorBox } from "./dom";

const app = document.getElementById("app")!;
let generation = 0;

async function route(): Promise<void> {
  const mine = ++generation;
  const current = () => mine === generation;
  const [, page = "", arg = ""] = location.hash.split("/").map(decodeURIComponent);
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", (a as HTMLElement).dataset.nav === (page || "explorer")));
  try {
    switch (page) {
      case "":
        return await explorer.latest(app, current);
      case "block":
        return await explorer.block(app, arg);
      case "tx":
        return await explorer.tx(app, arg);
      case "address":
        return await explorer.address(app, arg);
      case "hub":
        return arg ? await hub.repo(app, arg) : await hub.repos(app);
      case "model":
        return await hub.model(app, arg);
      case "playground":
        return playground(app, arg);
      case "chat":
        return chat(app, arg);
      case "network":
        return await network(app);
      case "health":
        return await health(app, current);
      default:
        app.innerHTML = errorBox(`no page ${page}`);
    }
  } catch (e) {
    if (current()) app.innerHTML = errorBox(e);
  }
}

document.querySelector<HTMLFormElement>("#search")!.onsubmit = (ev) => {
  ev.preventDefault();
  const q = String(new FormData(ev.target as HTMLFormElement).get("q") ?? "").trim();
  if (/^\d+$/.test(q)) location.hash = `#/block/${q}`;
  else if (/^0x[0-9a-fA-F]{40}$/.test(q)) location.hash = `#/address/${q}`;
  else if (/^0x[0-9a-fA-F]{64}$/.test(q)) location.hash = `#/tx/${q}`;
  else if (/^b3[a-z2-7]{52}$/.test(q)) location.hash = `#/model/${q}`;
  else app.innerHTML = errorBox(`not a block number, hash, address or content id: ${q}`);
};

window.addEventListener("hashchange", route);
route();
