/**
 * The TypeScript client over gRPC-Web from headless Chromium (playwright-core + Debian's
 * /usr/bin/chromium), through the gateway. Run by the Rust end-to-end tests after
 * `npm run build:test`, from clients/typescript:
 *
 *   node dist-test/test/chromium.js GATEWAY_URL AGENT
 *
 * Bundles test/browser.ts with esbuild, serves it in a page from its own HTTP server on
 * 127.0.0.1:0 (another loopback origin than the gateway's, so the calls are cross-origin and
 * pass the gateway's CORS; a served page, unlike a routed one, is in the loopback address space
 * Chromium lets call loopback), opens it in Chromium and runs its checks against `GATEWAY_URL/agents/AGENT` (the path-prefix form, as base-URL clients
 * use it). Prints the page's lines and `ALL OK`; exits 1 on a failure. Bounded: 60 s overall.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { chromium } from "playwright-core";


async function main(gateway: string, agent: string): Promise<void> {
  // Run from clients/typescript (the compiled script may live in any dist-test/ folder).
  const entry = join(process.cwd(), "test/browser.ts");
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "chrome120",
    write: false,
    logLevel: "error",
  });
  const script = bundle.outputFiles[0].text;
  const html = `<!doctype html><title>switchyard client</title><script>${script}</script>`;
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const pageUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const profile = mkdtempSync(join(tmpdir(), "switchyard-chromium-"));
  // A fresh profile (Playwright's persistent context is how it takes --user-data-dir).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.SWITCHYARD_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    timeout: 30_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(30_000);
    page.on("console", (m) => console.log(`page console: ${m.text()}`));
    page.on("requestfailed", (r) =>
      console.log(`page request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`),
    );
    await page.goto(pageUrl);
    const lines = await page.evaluate(
      (base) =>
        (globalThis as unknown as { switchyardChecks(b: string): Promise<string[]> })
          .switchyardChecks(base),
      `${gateway}/agents/${agent}`,
    );
    for (const line of lines) console.log(line);
    if (lines.length === 0 || lines.some((l) => !l.startsWith("ok"))) {
      process.exitCode = 1;
      return;
    }
    console.log("ALL OK");
  } finally {
    await browser.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const [gateway, agent] = process.argv.slice(2);
const timer = setTimeout(() => {
  console.log("FAIL: the Chromium checks took longer than 60 s");
  process.exit(1);
}, 60_000);
main(gateway, agent)
  .catch((err) => {
    console.log(`FAIL: ${err instanceof Error ? err.stack : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => clearTimeout(timer));
