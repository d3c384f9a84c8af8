// The console in headless Chromium (Debian's, driven by playwright-core)
// against a running devnet: the explorer shows a new block after a
// transaction, the network page lists validators and nodes, the playground
// runs the demo model through the chain in QUORUM, ZKML and TEE mode and
// checks each result in the browser, a model uploaded from the browser is
// listed and runs with a verified receipt, chat streams tokens, and bad
// input shows the API's error. Screenshots go to SHOTS.
// Environment: CONSOLE_URL (a validator's API), CONSOLE_KEY and
// TRANSFER_KEY (funded dev keys), DEMO_MODEL (its content id), MODEL_FILE
// (an ONNX file to upload), LLM (a chat model in the hub), SHOTS, CHROMIUM.
import { chromium } from "playwright-core";
import { privateKeyToAccount } from "viem/accounts";
import { encodeFunctionData } from "viem";
import { mkdirSync, writeFileSync } from "node:fs";

const env = (k) => process.env[k] ?? (() => { throw new Error(`${k} is not set`); })();
const base = env("CONSOLE_URL");
const shots = env("SHOTS");
const [modelFile, llm, demo] = [env("MODEL_FILE"), env("LLM"), env("DEMO_MODEL")];
mkdirSync(shots, { recursive: true });

const rpc = async (method, params = []) => {
  const r = await (await fetch(`${base}/rpc`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) })).json();
  if (r.error) throw new Error(`${method}: ${r.error.message}`);
  return r.result;
};

/** A plain transfer, signed here (not by the console). */
async function transfer(key) {
  const account = privateKeyToAccount(key);
  const [chainId, nonce, gasPrice] = await Promise.all([rpc("eth_chainId"), rpc("eth_getTransactionCount", [account.address, "pending"]), rpc("eth_gasPrice")]);
  const raw = await account.signTransaction({ type: "eip1559", chainId: Number(chainId), nonce: Number(nonce), to: "0x0707070707070707070707070707070707070707", value: 12345n, gas: 21000n, maxFeePerGas: BigInt(gasPrice) * 2n, maxPriorityFeePerGas: 1n });
  return rpc("eth_sendRawTransaction", [raw]);
}

/** A deposit to `payee` in the escrow, signed here. */
async function deposit(key, payee) {
  const account = privateKeyToAccount(key);
  const [chainId, nonce, gasPrice] = await Promise.all([rpc("eth_chainId"), rpc("eth_getTransactionCount", [account.address, "pending"]), rpc("eth_gasPrice")]);
  const data = encodeFunctionData({ abi: [{ type: "function", name: "deposit", inputs: [{ name: "payee", type: "address" }], outputs: [], stateMutability: "payable" }], functionName: "deposit", args: [payee] });
  const raw = await account.signTransaction({ type: "eip1559", chainId: Number(chainId), nonce: Number(nonce), to: "0x00000000000000000000000000000000000000fa", value: 10n ** 16n, data, gas: 200000n, maxFeePerGas: BigInt(gasPrice) * 2n, maxPriorityFeePerGas: 1n });
  const hash = await rpc("eth_sendRawTransaction", [raw]);
  for (let i = 0; i < 200; i++) {
    const r = await rpc("eth_getTransactionReceipt", [hash]);
    if (r) {
      if (r.status !== "0x1") throw new Error(`deposit failed: ${hash}`);
      return;
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error("the deposit is not in a block after 20 s");
}

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

await step("explorer-new-block", async () => {
  await page.goto(`${base}/`);
  const top = page.locator("table.blocks tbody tr td a").first();
  await top.waitFor({ timeout: 20000 });
  const before = Number(await top.textContent());
  const hash = await transfer(env("TRANSFER_KEY"));
  // the page, left open, shows the block that holds it
  const row = page.locator("table.txs tbody tr", { has: page.locator(`a[href="#/tx/${hash}"]`) });
  await row.waitFor({ timeout: 30000 });
  const block = Number(await row.locator("td").nth(1).textContent());
  if (!(block > before)) throw new Error(`the transaction is in block ${block}, not after ${before}`);
  await page.locator(`table.blocks a[href="#/block/${block}"]`).first().waitFor();
  await row.locator(`a[href="#/tx/${hash}"]`).click();
  await page.getByText("success").waitFor();
});

await step("network", async () => {
  await page.goto(`${base}/#/network`);
  await page.locator("table.validators tbody tr").nth(3).waitFor();
  const nodes = page.locator("table.nodes tbody tr");
  await nodes.nth(2).waitFor();
  if ((await nodes.count()) !== 3) throw new Error(`${await nodes.count()} inference nodes listed, not 3`);
  for (let i = 0; i < 3; i++) await nodes.nth(i).getByText("active (dev enclave)").waitFor({ timeout: 30000 });
  // each node declares its engine and the deterministic profile QUORUM samples
  for (let i = 0; i < 3; i++) await nodes.nth(i).locator("td:nth-child(4)").getByText("det-1").waitFor();
  // and what it charges off chain (the devnet's prices)
  for (let i = 0; i < 3; i++) await nodes.nth(i).locator("td:nth-child(11)").filter({ hasText: "0.000001 a call" }).waitFor();
});

const quorumTx = {};
for (const [mode, proof] of [["QUORUM", "3 of 3 required signed the same outcome"], ["ZKML", "Groth16 proof"], ["TEE", "a dev enclave"]]) {
  await step(`playground-${mode}`, async () => {
    await page.goto(`${base}/#/playground/${demo}`);
    await page.selectOption("select[name=mode]", mode);
    await page.fill("input[name=key]", env("CONSOLE_KEY"));
    await page.fill("textarea[name=inputs]", '{"x": [[0.5, -1.0, 0.25, 3.0]]}');
    await page.click("#run button");
    await page.locator("#chain-tx .ok").filter({ hasText: "success" }).waitFor({ timeout: 60000 });
    const outputs = JSON.parse(await page.locator("#outputs").textContent());
    if (!Array.isArray(outputs.y?.[0]) || outputs.y[0].length !== 3) throw new Error(`outputs: ${JSON.stringify(outputs)}`);
    quorumTx[mode] = await page.locator("#chain-tx a.mono").getAttribute("href");
    await page.click("#verify-chain");
    const checks = page.locator("#chain-checks li");
    await checks.first().waitFor();
    if (await page.locator("#chain-checks li.bad").count()) throw new Error(await page.locator("#chain-checks").textContent());
    for (const text of ["keccak of the calldata", "ed25519 signature", proof]) await page.locator("#chain-checks li.ok").filter({ hasText: text }).first().waitFor();
    if (mode !== "QUORUM") return;
    // the checks can fail: one node's signature altered in what the node serves
    await page.route("**/rpc", async (route) => {
      const body = route.request().postDataJSON();
      const response = await route.fetch();
      const json = await response.json();
      if (body.method === "gradnet_sidecar") {
        for (const c of json.result.calls) {
          const s = c.answers[0].signature;
          c.answers[0].signature = s.slice(0, -2) + (s.endsWith("00") ? "01" : "00");
        }
      }
      await route.fulfill({ response, json });
    });
    await page.click("#verify-chain");
    await page.locator("#chain-checks li.bad").filter({ hasText: "signature does not verify" }).first().waitFor();
    await page.locator("#chain-checks li.bad").filter({ hasText: "2 of 3 required" }).waitFor();
    if ((await page.locator("#chain-checks li.bad").count()) !== 2) throw new Error(await page.locator("#chain-checks").textContent());
    await page.unroute("**/rpc");
  });
}

// the same modes off chain, through the validator's gateway: a certificate in milliseconds, checked here
for (const [mode, proof] of [["QUORUM", "answers agree"], ["TEE", "enclave registration"]]) {
  await step(`playground-gateway-${mode}`, async () => {
    await page.goto(`${base}/#/playground/${demo}`);
    await page.selectOption("select[name=mode]", `gw-${mode}`);
    await page.fill("textarea[name=inputs]", '{"x": [[0.5, -1.0, 0.25, 3.0]]}');
    await page.click("#run button");
    const checks = page.locator("#certificate-checks li");
    await checks.first().waitFor({ timeout: 30000 });
    if (await page.locator("#certificate-checks li.bad").count()) throw new Error(await page.locator("#certificate-checks").textContent());
    for (const text of ["signature valid", proof, "the outputs in hand are the certified ones"]) await page.locator("#certificate-checks li.ok").filter({ hasText: text }).first().waitFor();
  });
}

await step("inference-tx", async () => {
  await page.goto(`${base}/${quorumTx.QUORUM}`);
  const call = page.locator("table.inference");
  await call.waitFor({ timeout: 20000 });
  for (const text of ["runModelInference", "QUORUM-3", "3 of 3 nodes agreed", "agreed: 3"]) await call.getByText(text).first().waitFor();
  await page.getByText("success").waitFor();
  // a node paid for its answers shows its earnings
  await page.goto(`${base}/#/network`);
  await page.locator("table.nodes tbody tr").first().waitFor();
  const earned = await page.locator("table.nodes tbody tr td:nth-child(6)").allTextContents();
  if (!earned.some((e) => Number(e) > 0)) throw new Error(`no node earned anything: ${earned}`);
  // uptime: every validator's precommits in the recent certificates, the nodes' answers to the calls they were asked
  const signed = await page.locator("table.validators tbody tr td:nth-child(3)").allTextContents();
  if (signed.length !== 4 || !signed.some((t) => /^\d+\.\d% \(\d+\/\d+\)$/.test(t) && !t.startsWith("0.0%"))) throw new Error(`validators signed: ${signed}`);
  const answered = await page.locator("table.nodes tbody tr td:nth-child(8)").allTextContents();
  if (!answered.some((t) => /^\d+\.\d% \([1-9]\d*\/\d+\)$/.test(t))) throw new Error(`nodes answered: ${answered}`);
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
  // no account: a development node keeps an unsigned local repository
  await page.fill("#signer input", "");
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
  // the node says it runs the model, under the deterministic profile
  await page.locator("#runs").getByText("det-1").waitFor();
  await page.locator("table.engines td", { hasText: /^gradnet-onnx$/ }).waitFor();
});

await step("hub-errors", async () => {
  // a corrupt model and a taken name: the API's own messages
  const corrupt = `${shots}/corrupt.onnx`;
  writeFileSync(corrupt, "this is not an ONNX model");
  await page.goto(`${base}/#/hub/console-mlp`);
  await page.locator("#upload").waitFor();
  await page.setInputFiles("#upload input[type=file]", corrupt);
  await page.click("#upload button");
  await page.locator("#hub-error [role=alert]").waitFor({ timeout: 20000 });
  const said = await page.locator("#hub-error").textContent();
  if (!/onnx|model/i.test(said)) throw new Error(`upload error: ${said}`);
  await page.goto(`${base}/#/hub`);
  await page.fill("input[name=name]", "console-mlp");
  await page.click("#create button");
  await page.locator("#create-error [role=alert]").filter({ hasText: "already exists" }).waitFor();
});

const addressOf = (key) => privateKeyToAccount(key).address;

await step("hub-publish-on-chain", async () => {
  // with an account, the name goes on chain: owned by it, served by every node
  await page.goto(`${base}/#/hub`);
  await page.fill("#signer input", env("CONSOLE_KEY"));
  await page.fill("input[name=name]", "console-chain");
  await page.click("#create button");
  await page.getByRole("heading", { name: "console-chain" }).waitFor({ timeout: 60000 });
  await page.locator("#owner").filter({ hasText: addressOf(env("CONSOLE_KEY")) }).waitFor();
  await page.getByText("registered on chain").waitFor();
  await page.setInputFiles("#publish input[type=file]", modelFile);
  await page.fill("#publish input[name=notes]", "from the browser");
  await page.click("#publish button");
  await page.getByRole("heading", { name: "Version 1.00" }).waitFor({ timeout: 60000 });
  await page.locator("table.files").getByText("model.onnx").waitFor();
  // the same name, the same bytes, through another path: the node's REST
  const files = await (await fetch(`${base}/api/v0/models/console-chain/versions/1.00/files`)).json();
  if (files[0]?.cid !== cid) throw new Error(`on chain: ${JSON.stringify(files)}, uploaded locally as ${cid}`);
  // another account may not publish into it: the registry's reason, nothing sent
  await page.fill("#signer input", env("TRANSFER_KEY"));
  await page.setInputFiles("#publish input[type=file]", modelFile);
  await page.click("#publish button");
  await page.locator("#hub-error [role=alert]").filter({ hasText: "may not publish" }).waitFor({ timeout: 30000 });
  await page.fill("#signer input", "");
});

await step("wallet-session", async () => {
  // a browser wallet (EIP-1193, backed here by a dev key): one typed-data
  // signature signs the tab in; its uploads then ride the session token
  const key = env("TRANSFER_KEY");
  const wallet = privateKeyToAccount(key);
  const signatures = [];
  const context = await browser.newContext();
  await context.exposeFunction("__wallet", async (method, params) => {
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [wallet.address];
    if (method === "eth_signTypedData_v4") {
      const typed = JSON.parse(params[1]);
      signatures.push(typed.message.path);
      delete typed.types.EIP712Domain;
      return wallet.signTypedData({ ...typed, message: { ...typed.message, timestamp: BigInt(typed.message.timestamp) } });
    }
    if (method === "eth_sendTransaction") {
      const [tx] = params;
      const [chainId, nonce, gasPrice] = await Promise.all([rpc("eth_chainId"), rpc("eth_getTransactionCount", [wallet.address, "pending"]), rpc("eth_gasPrice")]);
      const raw = await wallet.signTransaction({ type: "eip1559", chainId: Number(chainId), nonce: Number(nonce), to: tx.to, data: tx.data, gas: BigInt(tx.gas), maxFeePerGas: BigInt(gasPrice) * 2n, maxPriorityFeePerGas: 1n });
      return rpc("eth_sendRawTransaction", [raw]);
    }
    throw new Error(`the test wallet does not do ${method}`);
  });
  await context.addInitScript(() => {
    window.ethereum = { request: ({ method, params }) => window.__wallet(method, params ?? []) };
  });
  const tab = await context.newPage();
  tab.on("pageerror", (e) => errors.push(String(e)));
  try {
    await tab.goto(`${base}/#/hub`);
    await tab.getByText("empty: your browser wallet").waitFor();
    await tab.fill("input[name=name]", "wallet-model");
    await tab.click("#create button");
    await tab.getByRole("heading", { name: "wallet-model" }).waitFor({ timeout: 60000 });
    await tab.locator("#owner").filter({ hasText: wallet.address }).waitFor();
    // two files: two uploads, one sign-in
    const second = `${shots}/notes.txt`;
    writeFileSync(second, "weights of a second file");
    await tab.setInputFiles("#publish input[type=file]", [modelFile, second]);
    await tab.click("#publish button");
    await tab.getByRole("heading", { name: "Version 1.00" }).waitFor({ timeout: 60000 });
    await tab.locator("table.files").getByText("notes.txt").waitFor();
    if (JSON.stringify(signatures) !== JSON.stringify(["/api/v0/sessions"])) throw new Error(`the wallet signed ${JSON.stringify(signatures)}, not one sign-in`);
    // the node counted the stored bytes against the wallet's account
    const usage = await (await fetch(`${base}/api/v0/accounts/${wallet.address}`)).json();
    if (!(usage.bytes_stored > 0)) throw new Error(`usage: ${JSON.stringify(usage)}`);
    await tab.screenshot({ path: `${shots}/wallet-session-tab.png`, fullPage: true });
  } finally {
    await context.close();
  }
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

await step("playground-uploaded-QUORUM", async () => {
  // the model just uploaded to this validator's hub: the inference nodes fetch it by content id
  await page.goto(`${base}/#/playground/${cid}`);
  await page.selectOption("select[name=mode]", "QUORUM");
  await page.fill("input[name=key]", env("CONSOLE_KEY"));
  await page.click("#run button");
  await page.locator("#chain-tx .ok").filter({ hasText: "success" }).waitFor({ timeout: 60000 });
  const outputs = JSON.parse(await page.locator("#outputs").textContent());
  if (outputs.y?.[0]?.length !== 2) throw new Error(`outputs: ${JSON.stringify(outputs)}`);
  await page.click("#verify-chain");
  await page.locator("#chain-checks li.ok").filter({ hasText: "3 of 3 required" }).waitFor();
  if (await page.locator("#chain-checks li.bad").count()) throw new Error(await page.locator("#chain-checks").textContent());
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
  // through the chain: the dry run names the problem before anything is paid
  await page.selectOption("select[name=mode]", "QUORUM");
  await page.fill("input[name=key]", "");
  await run('{"x": [[1, 2, 3, 4]]}', "not found");
  await page.fill("input[name=model]", demo);
  await run('{"x": [[1, 2, 3, 4]]}', "a transaction needs an account");
  // an account with nothing to pay the nodes: refused by the dry run, nothing sent
  await page.fill("input[name=key]", "0x" + "11".repeat(32));
  await run('{"x": [[1, 2, 3, 4]]}', "inference fee");
  await page.fill("input[name=key]", "");
  await run('{"x": [[1, 2], [3]]}', "ragged");
});

await step("chat", async () => {
  await page.goto(`${base}/#/chat/${llm}`);
  await page.click("#chat button");
  await page.locator("#finish").filter({ hasText: "finished" }).waitFor({ timeout: 30000 });
  const chunks = Number(await page.locator("#answer").getAttribute("data-chunks"));
  if (!(chunks > 1)) throw new Error(`the answer came in ${chunks} chunk(s), not streamed`);
  // the receipt: its output hash recomputed from the streamed text, its signature checked here
  await page.locator("#chat-hash li.ok").filter({ hasText: "matches the receipt" }).waitFor();
  await page.click("#chat-verify");
  await page.locator("#chat-verdict.ok").filter({ hasText: "signature valid" }).waitFor();
  // an unknown model: the API's error, not a blank page
  await page.fill("input[name=model]", "no-such-llm");
  await page.click("#chat button");
  await page.getByRole("alert").waitFor();
});

await step("chat-TEE", async () => {
  // the same model through the chain, served by an enclave; the answer read from the block
  await page.fill("input[name=model]", llm);
  await page.selectOption("select[name=mode]", "TEE");
  await page.fill("input[name=key]", env("CONSOLE_KEY"));
  await page.click("#chat button");
  await page.locator("#chain-tx .ok").filter({ hasText: "success" }).waitFor({ timeout: 60000 });
  await page.locator("#finish").filter({ hasText: "read from the block" }).waitFor();
  await page.click("#verify-chain");
  await page.locator("#chain-checks li").first().waitFor();
  if (await page.locator("#chain-checks li.bad").count()) throw new Error(await page.locator("#chain-checks").textContent());
  for (const text of ["ed25519 signature", "the result the contract received is the signed outcome", "a dev enclave"]) await page.locator("#chain-checks li.ok").filter({ hasText: text }).first().waitFor();
});

await step("paid-playground", async () => {
  // an inference node serves the console too, and charges: the page pays with the tab's key
  const node = env("PAID_NODE");
  const terms = await (await fetch(`${node}/api/v0/payments`)).json();
  await deposit(env("CONSOLE_KEY"), terms.payee);
  await page.goto(`${node}/#/playground/${demo}`);
  await page.locator("#account").waitFor();
  await page.fill("input[name=key]", env("CONSOLE_KEY"));
  await page.fill("textarea[name=inputs]", '{"x": [[0.5, -1.0, 0.25, 3.0]]}');
  await page.click("#run button");
  await page.locator("#charge").filter({ hasText: "paid: 0.000001 ETH" }).waitFor({ timeout: 30000 });
  // the next call rides the same voucher
  await page.click("#run button");
  await page.locator("#charge").filter({ hasText: "0.000002 ETH charged" }).waitFor({ timeout: 30000 });
  const receipt = JSON.parse(await page.locator("#receipt").textContent());
  if (receipt.charge?.payee?.toLowerCase() !== terms.payee.toLowerCase()) throw new Error(`receipt charge: ${JSON.stringify(receipt.charge)}`);
  await page.click("#verify");
  await page.locator("#verdict.ok").filter({ hasText: "signature valid" }).waitFor();
});

await step("health", async () => {
  await page.goto(`${base}/#/health`);
  // requests while the page is open (its own polling is not counted) show up as throughput, latency and errors
  const traffic = setInterval(() => fetch(`${base}/v1/models`).catch(() => {}), 100);
  for (const id of ["throughput", "latency", "errors"]) await page.locator(`#${id} svg path`).first().waitFor({ state: "attached", timeout: 10000 });
  await page.locator("#throughput figcaption").filter({ hasText: /requests\/s \d/ }).waitFor();
  await page.locator("#latency figcaption").filter({ hasText: "ms" }).waitFor();
  clearInterval(traffic);
  // the node's own history: the whole run so far, in 5 s intervals
  await page.selectOption("#window", "1h");
  await page.locator("#span").filter({ hasText: /^\d+ intervals of 5 s$/ }).waitFor();
  const intervals = Number((await page.locator("#span").textContent()).split(" ")[0]);
  if (intervals < 1) throw new Error("no history after the whole run");
  await page.locator("#latency svg path").first().waitFor({ state: "attached" });
  await page.locator("#throughput figcaption").filter({ hasText: /requests\/s \d/ }).waitFor();
});

if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
await browser.close();
console.log("console ok");
