// What a first-time user meets beyond drive.js's tour, checked in headless Chromium: the namespace the key stands
// for, an action of the same name made elsewhere, the keyboard, a run that outlasts the blocking wait (the server
// under test waits 1.5 s), an array result, results and logs holding HTML, a reload, a phone-wide window; and web
// actions' pages opened in the playground's tab: one that reads the tab's sessionStorage (the playground's is of
// another origin), one that tries to make its script the service worker of the whole origin. Prints one JSON object
// for tests/playground/test_playground.py.
// Usage: node first_use.js <whisk url> <guest key>
"use strict";

const { withBrowser, report } = require("./browser");

const [url, guestKey] = process.argv.slice(2);
const QUICK = 'def main(args):\n    return {"quick": True}\n';
const SLOW = 'import time\ndef main(args):\n    time.sleep(4)\n    return {"slept": 4}\n';
const MARKUP = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>';
const HOSTILE = `def main(args):\n    print(${JSON.stringify(MARKUP)})\n    return {"error": ${JSON.stringify(MARKUP)}}\n`;
// A worker that answers for the playground, asking for the scope of the whole origin; and a page that registers it.
const WORKER = 'def main(args):\n    return {"headers": {"Content-Type": "text/javascript", "Service-Worker-Allowed": "/"},'
  + ' "body": "self.addEventListener(\'fetch\', (e) => e.respondWith(new Response(\'taken\')));"}\n';
const REGISTER = 'def main(args):\n    return {"headers": {"Content-Type": "text/html"}, "body": "<script>'
  + 'navigator.serviceWorker.register(\'fu-worker.http\', {scope: \'/\'}).then((r) => { document.title = '
  + '\'registered \' + r.scope; }, (e) => { document.title = \'refused \' + e.name; });</script>"}\n';

// A tenant's page that lists what the tab's sessionStorage holds for its origin.
const SNOOP = 'def main(args):\n    return {"headers": {"Content-Type": "text/html"}, "body": "<script>'
  + 'document.title = \'storage \' + JSON.stringify(Object.keys(sessionStorage));</script>"}\n';

const AUTH = () => "Basic " + Buffer.from(guestKey).toString("base64");

async function putAction(name, code, { web = false } = {}) {
  const answer = await fetch(`${url}/api/v1/namespaces/_/actions/${name}?overwrite=true`, {
    method: "PUT", body: JSON.stringify({ exec: { kind: "python:3.11", code },
      annotations: web ? [{ key: "web-export", value: true }] : [] }),
    headers: { "Content-Type": "application/json", Authorization: AUTH() },
  });
  if (answer.status !== 200) throw new Error(`PUT ${name}: ${answer.status} ${await answer.text()}`);
}

async function codeOf(name) {
  const answer = await fetch(`${url}/api/v1/namespaces/_/actions/${name}`, { headers: { Authorization: AUTH() } });
  return (await answer.json()).exec.code;
}

async function main() {
  const seen = { console: [], steps: {} };
  await withBrowser(seen, async (context) => {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(60000);
    page.on("pageerror", (e) => seen.console.push(`pageerror: ${e.message}`));
    const result = page.locator("#result");
    const name = page.getByRole("textbox", { name: "Action name" });
    const code = page.getByRole("textbox", { name: "Code", exact: true });
    const run = page.getByRole("button", { name: "Run", exact: true });
    const panel = async () => ({ result: await result.textContent(), logs: await page.locator("#logs").textContent(),
      summary: await page.locator("#summary").textContent(), status: await page.locator("#status").textContent() });

    await page.goto(`${url}/playground/`);
    await page.locator("#key-state").getByText("namespace").waitFor();
    seen.steps.key = await page.locator("#key-state").textContent();

    // A quick run, then a slow one: the quick one's result must not stand for the slow one's.
    // An action made elsewhere (the CLI) under the name typed here is not replaced by a Run until asked again.
    await putAction("fu-theirs", 'def main(args):\n    return {"theirs": True}\n');
    await name.fill("fu-theirs");
    await code.fill(QUICK);
    await run.click();
    await page.getByRole("alert").getByText("already exists").waitFor();
    seen.steps.theirs = { alert: await page.getByRole("alert").textContent(), code: await codeOf("fu-theirs") };
    await run.click();
    await result.getByText('"quick": true').waitFor();
    seen.steps.theirs.replaced = await codeOf("fu-theirs");

    // Run pressed from the keyboard keeps the focus, in the page and on Run, through the run.
    await name.fill("fu-quick");
    await code.fill(QUICK);
    await run.press("Enter");
    await result.getByText('"quick": true').waitFor();
    seen.steps.focus = { afterRun: await page.evaluate(() => document.activeElement.id),
      live: await page.locator("#summary").getAttribute("aria-live") };
    await page.getByRole("button", { name: "Save" }).press("Enter");
    await page.getByRole("status").getByText("Saved action fu-quick").waitFor();
    seen.steps.focus.afterSave = await page.evaluate(() => document.activeElement.id);
    await name.fill("fu-slow");
    await code.fill(SLOW);
    await run.click();
    await page.waitForTimeout(300);
    seen.steps.running = await panel();
    await page.getByRole("status").getByText("Still running").waitFor();
    seen.steps.stillRunning = await panel();
    await result.getByText('"slept": 4').waitFor();
    seen.steps.ended = await panel();

    // A result that is an array: the blocking answer is the bare array (as OpenWhisk's), the record has the rest.
    await name.fill("fu-list");
    await code.fill('def main(args):\n    print("a list")\n    return [1, "two", {"three": 3}]\n');
    await run.click();
    await page.locator("#summary").getByText("guest/fu-list").waitFor();
    await page.locator("#logs").getByText("a list").waitFor();
    seen.steps.list = await panel();

    // Markup in a result, an error and the logs is shown as text, never made into elements.
    await name.fill("fu-hostile");
    await code.fill(HOSTILE);
    await run.click();
    await page.getByRole("alert").getByText("The action failed").waitFor();
    await page.locator("#logs").getByText("onerror").waitFor();
    seen.steps.hostile = { ...(await panel()), pwned: await page.evaluate(() => window.__pwned ?? null),
      images: await page.locator("img, script:not([src])").count() };

    // A reload keeps what the editor held (the tab's sessionStorage), not the sample.
    await page.fill("#params", '{"after": "reload"}');
    await page.reload();
    await page.locator("#key-state").getByText("namespace").waitFor();
    seen.steps.reloaded = { name: await name.inputValue(), code: await code.inputValue(),
      params: await page.locator("#params").inputValue(), runtime: await page.locator("#runtime").inputValue() };

    // A phone-wide window: everything fits its width, nothing to scroll sideways.
    await page.setViewportSize({ width: 360, height: 740 });
    seen.steps.narrow = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth }));

    // A tenant's web page opened in the playground's tab finds nothing of the playground's in sessionStorage.
    await putAction("fu-snoop", SNOOP, { web: true });
    const kept = await page.evaluate(() => Object.keys(sessionStorage).sort());
    await page.goto(`${url}/api/v1/web/guest/default/fu-snoop.http`);
    await page.waitForFunction(() => document.title !== "");
    seen.steps.snoop = { playground: kept, tenant: await page.title() };

    // A tenant's web page asks for a service worker over the whole origin; the playground stays the playground.
    await putAction("fu-worker", WORKER, { web: true });
    await putAction("fu-register", REGISTER, { web: true });
    await page.goto(`${url}/api/v1/web/guest/default/fu-register.http`);
    await page.waitForFunction(() => document.title !== "");
    const registration = await page.title();
    await page.waitForTimeout(500);
    await page.goto(`${url}/playground/`);
    seen.steps.worker = { registration, heading: await page.locator("h1").allTextContents(),
      controlled: await page.evaluate(() => navigator.serviceWorker.controller !== null) };
  });
}

report(main);
