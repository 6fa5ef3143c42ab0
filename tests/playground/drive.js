// Drives the playground in headless Chromium as a person would, finding every control by its accessible role and
// name, and prints what the page showed at each step as one JSON object for tests/playground/test_playground.py
// to check. Usage: node drive.js <whisk url> <output dir> <guest key>
"use strict";

const path = require("path");
const { withBrowser, report } = require("./browser");

const [url, outDir, guestKey] = process.argv.slice(2);
const STEP_MS = 60000;   // a cold start on a busy machine

const PYTHON = 'def main(args):\n    print("hello from python", args.get("name"))\n'
  + '    return {"greeting": "Hello, " + args.get("name", "?") + "!"}\n';
const NODE = 'function main(params) {\n  console.log("hello from node", params.name);\n'
  + '  return { greeting: `Hi ${params.name}`, runtime: process.version };\n}\n';
const FAILING = 'def main(args):\n    return {"error": "deliberate failure for the test"}\n';
const EDITED = 'def main(args):\n    return {"edited": True}\n';

async function main() {
  const seen = { requests: [], responses: [], console: [], steps: {} };
  await withBrowser(seen, async (context) => {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on("request", (r) => seen.requests.push(r.url()));
    page.on("response", (r) => seen.responses.push({ url: r.url(), status: r.status() }));
    page.on("console", (m) => { if (m.type() === "error") seen.console.push(m.text()); });
    page.on("pageerror", (e) => seen.console.push(`pageerror: ${e.message}`));

    const result = page.getByRole("region", { name: "Result" });
    const logs = page.getByRole("region", { name: "Logs" });
    const activations = page.getByRole("region", { name: "Activations" });
    const actions = page.getByRole("region", { name: "Actions" });
    const runtime = page.getByRole("combobox", { name: "Runtime" });
    const code = page.getByRole("textbox", { name: "Code", exact: true });
    const params = page.getByRole("textbox", { name: "Parameters" });
    const name = page.getByRole("textbox", { name: "Action name" });
    const run = page.getByRole("button", { name: "Run", exact: true });
    const alert = page.getByRole("alert");
    const summary = async () => {
      const cells = await page.locator("#summary dt, #summary dd").allTextContents();
      const out = {};
      for (let i = 0; i + 1 < cells.length; i += 2) out[cells[i]] = cells[i + 1];
      return out;
    };
    const kindOf = async (family) => (await runtime.locator("option").evaluateAll(
      (options, f) => options.map((o) => o.value).filter((v) => v.startsWith(f + ":")), family))[0];
    const waitForNewRecord = async (previousId) => {
      await page.waitForFunction((prev) => {
        const dd = [...document.querySelectorAll("#summary dd")][1];
        return dd && dd.textContent && dd.textContent !== prev;
      }, previousId || "");
      return summary();
    };

    await page.goto(`${url}/playground`);
    await runtime.locator("option").first().waitFor({ state: "attached" });
    seen.steps.start = {
      title: await page.title(),
      keyState: await page.locator("#key-state").textContent(),
      runtimes: await runtime.locator("option").evaluateAll((o) => o.map((x) => x.value)),
      csp: (await (await context.request.get(`${url}/playground/`)).headers())["content-security-policy"],
    };

    // 1. Python with the Run button: cold start.
    await name.fill("pg-python");
    await runtime.selectOption(await kindOf("python"));
    await code.fill(PYTHON);
    await params.fill('{"name": "tester"}');
    await run.click();
    await result.getByText("Hello, tester!").waitFor();
    await logs.getByText("hello from python tester").waitFor();
    const first = await summary();
    seen.steps.python = { summary: first, result: await result.locator("pre").textContent(),
      logs: await logs.locator("pre").textContent() };

    // 2. The same again with Ctrl+Enter from the editor: a warm start.
    await code.press("Control+Enter");
    seen.steps.pythonAgain = { summary: await waitForNewRecord(first["Activation id"]) };

    // 2b. The action deleted behind the page's back: Run stores it again and runs it.
    const deleted = await fetch(`${url}/api/v1/namespaces/_/actions/pg-python`, {
      method: "DELETE", headers: { Authorization: "Basic " + Buffer.from(guestKey).toString("base64") },
    });
    const again = seen.steps.pythonAgain.summary["Activation id"];
    await run.click();
    seen.steps.recreated = { deleteStatus: deleted.status, summary: await waitForNewRecord(again),
      result: await result.locator("pre").textContent() };

    // 3. Node.js.
    await name.fill("pg-node");
    await runtime.selectOption(await kindOf("nodejs"));
    await code.fill(NODE);
    await params.fill('{"name": "node tester"}');
    await run.click();
    await result.getByText("Hi node tester").waitFor();
    await logs.getByText("hello from node node tester").waitFor();
    seen.steps.node = { summary: await summary(), result: await result.locator("pre").textContent(),
      logs: await logs.locator("pre").textContent() };

    // 4. Errors, in words. Bad JSON parameters: nothing is sent.
    await params.fill("{not json");
    await run.click();
    await alert.getByText("not valid JSON").waitFor();
    seen.steps.badJson = { alert: await alert.textContent(), result: await result.locator("pre").textContent() };
    await params.fill("{}");

    // An action that fails.
    await name.fill("pg-failing");
    await runtime.selectOption(await kindOf("python"));
    await code.fill(FAILING);
    await run.click();
    await alert.getByText("The action failed").waitFor();
    seen.steps.actionError = { alert: await alert.textContent(), summary: await summary(),
      result: await result.locator("pre").textContent() };

    // The network down (the browser offline).
    await context.setOffline(true);
    await run.click();
    await alert.getByText("Cannot reach the API").waitFor();
    seen.steps.offline = { alert: await alert.textContent() };
    await context.setOffline(false);

    // A wrong key: 401, said in words, in the alert and in the activations list.
    await page.getByLabel("Key", { exact: true }).fill("00000000-0000-0000-0000-000000000000:wrong");
    await page.getByRole("button", { name: "Use key" }).click();
    await run.click();
    await alert.getByText("401").waitFor();
    await activations.getByText("401").waitFor();
    seen.steps.wrongKey = { alert: await alert.textContent(), activations: await activations.textContent(),
      keyState: await page.locator("#key-state").textContent() };

    // Paste the guest key back.
    await page.getByLabel("Key", { exact: true }).fill(guestKey);
    await page.getByRole("button", { name: "Use key" }).click();

    // 5. The activation list refreshes itself (no click here) and opens a record.
    const firstId = first["Activation id"];
    await activations.getByRole("button").filter({ hasText: firstId }).waitFor();
    seen.steps.activations = { buttons: await activations.getByRole("button").allTextContents() };
    await activations.getByRole("button").filter({ hasText: firstId }).click();
    await page.waitForFunction((id) => [...document.querySelectorAll("#summary dd")][1]?.textContent === id, firstId);
    seen.steps.opened = { summary: await summary(), logs: await logs.locator("pre").textContent() };

    // 6. Open an action from the namespace's list, edit it, save it.
    await page.getByRole("button", { name: "Reload actions" }).click();
    await actions.getByRole("button").filter({ hasText: "pg-python" }).click();
    await page.waitForFunction(() => document.getElementById("name").value === "pg-python");
    seen.steps.openAction = { code: await code.inputValue(), runtime: await runtime.inputValue(),
      notice: await page.locator("#status").textContent() };
    await code.fill(EDITED);
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("status").getByText("Saved action pg-python").waitFor();
    seen.steps.saved = { notice: await page.getByRole("status").textContent() };

    // A page back at rest for the picture: the first run's record open again.
    await activations.getByRole("button").filter({ hasText: firstId }).click();
    await page.waitForFunction((id) => [...document.querySelectorAll("#summary dd")][1]?.textContent === id, firstId);
    await name.fill("pg-python");
    await code.fill(PYTHON);
    await params.fill('{"name": "tester"}');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(outDir, "playground.png") });
  });
}

report(main);
