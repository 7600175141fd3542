/**
 * The TypeScript client over gRPC-Web from headless Chromium (playwright-core + Debian's
 * /usr/bin/chromium), through the gateway. Run by the Rust end-to-end tests after
 * `npm run build:test`, from clients/typescript:
 *
 *   node dist-test/test/chromium.js GATEWAY_URL AGENT
 *
 * Bundles test/browser.ts with esbuild, opens a page on another loopback origin (served by
 * Playwright's request routing, so the calls are cross-origin and pass the gateway's CORS), and
 * runs its checks against `GATEWAY_URL/agents/AGENT` (the path-prefix form, as base-URL clients
 * use it). Prints the page's lines and `ALL OK`; exits 1 on a failure. Bounded: 60 s overall.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { chromium } from "playwright-core";

/** The page's origin: loopback, but not the gateway's (a cross-origin page). */
const PAGE = "http://localhost:1/switchyard-client-test.html";

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

  const profile = mkdtempSync(join(tmpdir(), "switchyard-chromium-"));
  const browser = await chromium.launch({
    executablePath: process.env.SWITCHYARD_CHROMIUM ?? "/usr/bin/chromium",
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
      `--user-data-dir=${profile}`,
    ],
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(30_000);
    page.on("console", (m) => console.log(`page console: ${m.text()}`));
    await page.route(PAGE, (route) =>
      route.fulfill({
        contentType: "text/html",
        body: `<!doctype html><title>switchyard client</title><script>${script}</script>`,
      }),
    );
    await page.goto(PAGE);
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
