// The headless Chromium the playground scripts drive (drive.js, first_use.js): a fresh profile each run, removed
// after; what the script saw printed as one JSON object for tests/playground/test_playground.py, or its error and
// exit status 1.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "node", "node_modules", "playwright-core"));

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// Runs `body(context)` in a new browser; `seen` (filled by the body) goes to stdout once the browser is closed.
async function withBrowser(seen, body) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "whisk-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium", headless: true, args: ARGS, viewport: { width: 1400, height: 900 },
  });
  try {
    await body(context);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(seen) + "\n");
}

function report(main) {
  main().catch((err) => {
    process.stderr.write(`${err.stack || err}\n`);
    process.exit(1);
  });
}

module.exports = { withBrowser, report };
