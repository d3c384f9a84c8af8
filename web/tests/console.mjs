// The console in headless Chromium (Debian's, driven by playwright-core):
// the explorer shows a new transaction, a model uploaded from the browser
// is listed, the playground runs it and shows the receipt, and bad input
// shows the API's error. Screenshots go to SHOTS.
// Usage: node tests/console.mjs API_URL TX_HASH MODEL_FILE SHOTS
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, txHash, modelFile, shots, llm, inferenceTx] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const step = async (name, f) => {
  try {
    await f();
    await shot(name);
  } catch (e) {
    await shot(`${name}-failed`).catch(() => {});
    throw new Error(`${name}: ${e.message}`);
  }
};

await step("explorer", async () => {
  await page.goto(`${base}/`);
  // the transaction sent before the page opened shows up among the latest
  await page.locator(`a[href="#/tx/${txHash}"]`).first().waitFor({ timeout: 20000 });
  await page.locator(`a[href="#/tx/${txHash}"]`).first().click();
  await page.getByText("success").waitFor();
});

await step("inference-tx", async () => {
  await page.goto(`${base}/#/tx/${inferenceTx}`);
  const call = page.locator("table.inference");
  await call.waitFor({ timeout: 20000 });
  for (const text of ["runModelInference", "VANILLA", "one staked node's signed result", "agreed: 1"]) await call.getByText(text).first().waitFor();
  await page.getByText("success").waitFor();
});

await step("network", async () => {
  await page.goto(`${base}/#/network`);
  await page.locator("table.validators tbody tr").first().waitFor();
  const node = page.locator("table.nodes tbody tr").first();
  await node.waitFor();
  // the node was paid for the call above
  await node.getByText("0.001").waitFor();
});

await step("search", async () => {
  await page.fill("#search input", "1");
  await page.press("#search input", "Enter");
  await page.getByRole("heading", { name: "Block 1" }).waitFor();
  await page.fill("#search input", "not-a-thing");
  await page.press("#search input", "Enter");
  await page.getByRole("alert").filter({ hasText: "not a block number" }).waitFor();
});

let cid;
await step("hub-upload", async () => {
  await page.goto(`${base}/#/hub`);
  await page.fill("input[name=name]", "console-mlp");
  await page.click("#create button");
  await page.getByRole("heading", { name: "console-mlp" }).waitFor();
  await page.click("#version button");
  await page.locator("#upload").waitFor();
  await page.setInputFiles("#upload input[type=file]", modelFile);
  await page.click("#upload button");
  await page.locator("table.files").getByText("model.onnx").waitFor({ timeout: 20000 });
  cid = await page.locator("table.files span.mono").first().getAttribute("title");
  if (!cid?.startsWith("b3")) throw new Error(`no content id listed: ${cid}`);
  await page.click("text=inputs & outputs");
  await page.locator("table.inputs td", { hasText: /^x$/ }).waitFor();
  await page.locator("table.outputs td", { hasText: /^y$/ }).waitFor();
});

await step("playground", async () => {
  await page.goto(`${base}/#/playground/${cid}`);
  await page.click("#run button");
  await page.locator("#receipt").waitFor();
  const receipt = JSON.parse(await page.locator("#receipt").textContent());
  if (!receipt.signature || !receipt.output_hash || receipt.model !== cid) throw new Error("no signed receipt shown");
  // both hashes recomputed in the browser match what the node signed
  await page.locator("#hash-checks li.ok").nth(1).waitFor();
  if (await page.locator("#hash-checks li.bad").count()) throw new Error(await page.locator("#hash-checks").textContent());
  // checked in the browser; a tampered receipt is not
  await page.click("#verify");
  await page.locator("#verdict.ok").filter({ hasText: "signature valid" }).waitFor();
  const tampered = { ...receipt, timestamp_ms: receipt.timestamp_ms + 1 };
  await page.fill("#receipt-input", JSON.stringify(tampered));
  await page.click("#verify");
  await page.locator("#verdict.bad").filter({ hasText: "does not match" }).waitFor();
});

await step("playground-errors", async () => {
  const run = async (inputs, expect) => {
    await page.fill("textarea[name=inputs]", inputs);
    await page.click("#run button");
    await page.getByRole("alert").filter({ hasText: expect }).waitFor();
  };
  await run("{not json", "not valid JSON");
  await run('{"x": [[1, 2]]}', "shape");
  await page.fill("input[name=model]", "b3" + "a".repeat(52));
  await run('{"x": [[1, 2, 3, 4]]}', "not found");
});

await step("chat", async () => {
  await page.goto(`${base}/#/chat/${llm}`);
  await page.click("#chat button");
  await page.locator("#finish").filter({ hasText: "finished" }).waitFor({ timeout: 30000 });
  const chunks = Number(await page.locator("#answer").getAttribute("data-chunks"));
  if (!(chunks > 1)) throw new Error(`the answer came in ${chunks} chunk(s), not streamed`);
  // an unknown model: the API's error, not a blank page
  await page.fill("input[name=model]", "no-such-llm");
  await page.click("#chat button");
  await page.getByRole("alert").waitFor();
});

await step("health", async () => {
  await page.goto(`${base}/#/health`);
  // the requests this test made show up as throughput, latency and errors
  for (const id of ["throughput", "latency", "errors"]) await page.locator(`#${id} svg path`).first().waitFor({ state: "attached", timeout: 10000 });
  await page.locator("#throughput figcaption").filter({ hasText: /requests\/s \d/ }).waitFor();
  await page.locator("#latency figcaption").filter({ hasText: "ms" }).waitFor();
});

if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
await browser.close();
console.log("console ok");
