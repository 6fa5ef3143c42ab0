// A screenshot of one page in headless Chromium (Debian's, driven by playwright-core), once a selector is visible.
// Usage: node screenshot.js <url> <out.png> <css selector> [width height]
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "node", "node_modules", "playwright-core"));

const [url, out, selector, width = "1280", height = "800"] = process.argv.slice(2);
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "whisk-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium", headless: true, args: ARGS,
    viewport: { width: Number(width), height: Number(height) },
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    await page.goto(url, { waitUntil: "load", timeout: 30000 });
    await page.locator(selector).first().waitFor({ state: "visible", timeout: 30000 });
    await page.waitForLoadState("networkidle", { timeout: 30000 });
    await page.screenshot({ path: out });
    process.stdout.write(JSON.stringify({ title: await page.title(), text: await page.locator("body").innerText() })
      + "\n");
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
