// Drives the gateway's web console in headless Chromium with playwright-core (spawned by
// tests/e2e/console.rs). Usage:
//
//   node tests/e2e/console.mjs <gateway URL> <output dir> <Markdown document>
//
// Chromium is $SWITCHYARD_CHROMIUM (default /usr/bin/chromium, Debian's package). Every wait
// is bounded; on failure a screenshot `failure.png` is saved and the exit code is 1. Prints
// one JSON line `{"ok":true,"checks":[…]}` on success.

import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

import { chromium } from "playwright-core";

const [base, out, documentPath] = process.argv.slice(2);
if (!base || !out || !documentPath) {
  console.error("usage: console.mjs <gateway URL> <output dir> <Markdown document>");
  process.exit(64);
}
const executablePath = process.env.SWITCHYARD_CHROMIUM || "/usr/bin/chromium";
fs.mkdirSync(out, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "switchyard-console-"));

const checks = [];
const dialogs = [];
const pageErrors = [];

const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  timeout: 60_000,
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
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(30_000);
page.on("dialog", (d) => {
  dialogs.push(d.message());
  d.dismiss().catch(() => {});
});
page.on("pageerror", (e) => pageErrors.push(String(e)));
const subscribes = [];
page.on("request", (r) => {
  if (r.url().includes(":subscribe")) subscribes.push(r.headers()["last-event-id"] ?? null);
});

const shot = (name) => page.screenshot({ path: path.join(out, name), fullPage: true });
const lastTurn = () => page.locator("#chat-log li.turn").last();

/** Sends a chat message to `agent`: text, optional metadata, optional files; Enter submits. */
async function send(agent, { text = "", metadata = "", files = [] }) {
  await page.selectOption("#chat-agent", agent);
  await page.fill("#chat-metadata", metadata);
  await page.setInputFiles("#chat-files", files);
  await page.fill("#chat-text", text);
  const before = await page.locator("#chat-log li.turn").count();
  if (text) await page.press("#chat-text", "Enter");
  else await page.click("#chat-send");
  await page.locator("#chat-log li.turn").nth(before).waitFor();
  return page.locator("#chat-log li.turn").nth(before);
}

const reached = (turn, state, timeout = 30_000) =>
  turn.locator(`.reply[data-state="${state}"]`).waitFor({ timeout });

function seqsOf(p) {
  return p.$$eval("#task-events li[data-seq]", (lis) => lis.map((li) => Number(li.dataset.seq)));
}
const seqs = () => seqsOf(page);

/** A TCP relay on 127.0.0.1:0 to `target`'s host and port; `cut()` breaks every connection. */
async function tcpRelay(target) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) sockets.add(s);
    const done = () => {
      for (const s of [client, upstream]) {
        s.destroy();
        sockets.delete(s);
      }
    };
    client.pipe(upstream);
    upstream.pipe(client);
    for (const s of [client, upstream]) {
      s.on("error", done);
      s.on("close", done);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

try {
  // 1. The directory: every agent with its skills, and each card.
  await page.goto(`${base}/`);
  await page.locator('body[data-agents-loaded="true"]').waitFor();
  for (const name of ["echo", "research", "textstats", "summarize", "keywords"]) {
    const card = page.locator(`#agents li[data-agent="${name}"]`);
    await card.waitFor();
    assert.ok((await card.locator("li.skill").count()) >= 1, `${name} lists its skills`);
    await page.locator(`#agents li[data-agent="${name}"][data-card-loaded="true"]`).waitFor();
  }
  const echoSkills = await page.locator('#agents li[data-agent="echo"] li.skill').allTextContents();
  assert.ok(echoSkills.some((s) => s.includes("Chunked stream")), echoSkills.join(" | "));
  checks.push("directory: 5 agents, skills and cards");
  await shot("01-agents.png");

  // 2. Chat with echo over the WebSocket front (Enter submits).
  let turn = await send("echo", { text: "hello from the console" });
  await reached(turn, "COMPLETED");
  assert.match(await turn.locator(".reply pre.text").first().textContent(), /hello from the console/);
  assert.match(await page.textContent("#chat-connection"), /connected to echo/);
  // A task that asks for input is answered from the chat: the next message continues it.
  const asking = await send("echo", { text: "ask me", metadata: '{"ask": "What is your name?"}' });
  await reached(asking, "INPUT_REQUIRED");
  assert.match(await asking.locator(".reply .note").textContent(), /What is your name\?/);
  const askedId = await asking.locator(".reply").getAttribute("data-task");
  turn = await send("echo", { text: "Ada" });
  await reached(turn, "COMPLETED");
  assert.equal(await turn.locator(".reply").getAttribute("data-task"), askedId, "the same task");
  assert.match(await turn.locator(".reply").textContent(), /Ada/);
  checks.push("chat: echo answered over the WebSocket, and a question was answered");

  // 3. Agent output with markup is text: no script element, no handler, no dialog.
  const evil = `<script>alert("xss-1")</script><img src=x onerror="alert('xss-2')"> **not bold**`;
  turn = await send("echo", { text: evil });
  await reached(turn, "COMPLETED");
  assert.equal(await turn.locator(".reply pre.text").first().textContent(), evil);
  // A Markdown file part goes through the gateway's renderer: headings survive, script does not.
  const evilMd = [
    "# Evil heading",
    "",
    "<script>alert('xss-3')</script>",
    "",
    "<img src=x onerror=\"alert('xss-4')\">",
    "",
    "[click me](javascript:alert('xss-5'))",
    "",
  ].join("\n");
  turn = await send("echo", {
    files: [{ name: "evil.md", mimeType: "text/markdown", buffer: Buffer.from(evilMd) }],
  });
  await reached(turn, "COMPLETED");
  await turn.locator('.reply .report[data-rendered="true"] h1').waitFor();
  assert.equal(await turn.locator(".reply .report h1").textContent(), "Evil heading");
  await page.waitForTimeout(300);
  const injected = await page.evaluate(() => ({
    scripts: document.querySelectorAll("main script").length,
    handlers: document.querySelectorAll("main [onerror], main [onclick], main [onload]").length,
    jsLinks: document.querySelectorAll('main a[href^="javascript" i]').length,
  }));
  assert.deepEqual(injected, { scripts: 0, handlers: 0, jsLinks: 0 });
  assert.deepEqual(dialogs, [], "no dialog fired");
  checks.push("safety: <script> shown as text; Markdown sanitized; no dialog");
  await shot("02-chat.png");

  // 4. A binary file as a part (raw bytes, base64 in JSON) comes back whole.
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  turn = await send("echo", {
    text: "a binary file",
    files: [{ name: "blob.bin", mimeType: "application/octet-stream", buffer: bytes }],
  });
  await reached(turn, "COMPLETED");
  await turn.locator('.reply .file[data-bytes="256"]').waitFor();
  assert.match(await turn.locator(".reply .file").first().textContent(), /blob\.bin/);
  checks.push("files: a 256-byte file sent as raw bytes and echoed");

  // 5. A research report of a real document, streamed to completion and rendered.
  turn = await send("research", {
    files: [documentPath],
  });
  await reached(turn, "COMPLETED", 120_000);
  const report = turn.locator('.reply .report[data-rendered="true"]');
  await report.waitFor();
  assert.equal(await report.locator("h1").first().textContent(), "Research report");
  const sections = await report.locator("h2").allTextContents();
  assert.ok(["textstats", "summarize", "keywords"].every((s) => sections.includes(s)), sections.join(","));
  checks.push(`research: report rendered (h1 + ${sections.length} sections)`);
  await report.scrollIntoViewIfNeeded();
  await shot("03-research.png");

  // 6. Cancel a long task from the chat.
  turn = await send("echo", { text: "a long task", metadata: '{"chunks": 300, "chunk_delay_ms": 100}' });
  await reached(turn, "WORKING");
  await turn.locator(".reply .artifact").first().waitFor();
  const canceledId = await turn.locator(".reply").getAttribute("data-task");
  assert.ok(canceledId, "the task id is known");
  await page.locator("#chat-cancel:not([disabled])").waitFor();
  await page.click("#chat-cancel");
  await reached(turn, "CANCELED");
  assert.ok(await page.locator("#chat-cancel").isDisabled(), "nothing left to cancel");
  checks.push(`cancel: task ${canceledId} CANCELED`);
  await shot("04-canceled.png");

  // 7. Task events over SSE; a reload mid-stream resumes after the last event shown.
  turn = await send("echo", { text: "resume me", metadata: '{"chunks": 40, "chunk_delay_ms": 150}' });
  await turn.locator("button.watch:not([hidden])").waitFor();
  const resumeId = await turn.locator(".reply").getAttribute("data-task");
  await turn.locator("button.watch").click();
  await page.waitForFunction(() => document.querySelectorAll("#task-events li[data-seq]").length >= 6);
  const beforeReload = await seqs();
  assert.equal(await page.locator('#task-section[data-done="true"]').count(), 0, "still streaming");
  const subscribesBefore = subscribes.length;
  await page.reload();
  await page.locator('#task-section[data-done="true"]').waitFor({ timeout: 60_000 });
  assert.equal(await page.getAttribute("#task-state", "data-state"), "COMPLETED");
  const after = await seqs();
  const resumedFrom = subscribes.slice(subscribesBefore);
  assert.equal(resumedFrom.length, 1, `one subscription after the reload: ${resumedFrom}`);
  const from = Number(resumedFrom[0]);
  assert.ok(from >= Math.max(...beforeReload), `resumed after ${from}, had shown ${beforeReload}`);
  assert.ok(from < Math.max(...after), "the reload came mid-stream");
  for (let i = 1; i < after.length; i++) {
    assert.ok(after[i] > after[i - 1], `no event twice, in order: ${after}`);
  }
  assert.deepEqual(after.slice(0, beforeReload.length), beforeReload);
  // The whole history, replayed separately, is exactly what the page shows.
  const history = await page.evaluate(async (id) => {
    const r = await fetch(`/agents/echo/tasks/${id}:subscribe`, {
      headers: { "A2A-Version": "1.0", "Last-Event-ID": "0" },
    });
    const text = await r.text();
    return [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  }, resumeId);
  assert.deepEqual(after, history);
  assert.match(await page.textContent("#task-artifacts"), /40\/40/);
  checks.push(`resume: ${after.length} events, ${beforeReload.length} before the reload, Last-Event-ID ${from}, none twice`);
  await shot("05-resumed.png");

  // 7b. A dropped connection resumes by itself: a second tab reaches the gateway through a TCP
  // relay that cuts every connection mid-stream.
  turn = await send("echo", { text: "drop me", metadata: '{"chunks": 50, "chunk_delay_ms": 150}' });
  await turn.locator("button.watch:not([hidden])").waitFor();
  const dropId = await turn.locator(".reply").getAttribute("data-task");
  const relay = await tcpRelay(new URL(base));
  const tab = await context.newPage();
  tab.setDefaultTimeout(30_000);
  tab.on("pageerror", (e) => pageErrors.push(String(e)));
  const tabSubscribes = [];
  tab.on("request", (r) => {
    if (r.url().includes(":subscribe")) tabSubscribes.push(r.headers()["last-event-id"] ?? null);
  });
  await tab.goto(`${relay.base}/#task=echo/${dropId}`);
  await tab.waitForFunction(() => document.querySelectorAll("#task-events li[data-seq]").length >= 4);
  const cutAt = Math.max(...(await seqsOf(tab)));
  relay.cut();
  await tab.locator('#task-section[data-done="true"]').waitFor({ timeout: 60_000 });
  const dropped = await seqsOf(tab);
  for (let i = 1; i < dropped.length; i++) {
    assert.ok(dropped[i] > dropped[i - 1], `no event twice, in order: ${dropped}`);
  }
  const resumes = tabSubscribes.filter((id) => Number(id) >= cutAt);
  assert.ok(resumes.length >= 1, `a resumed subscription after the cut at ${cutAt}: ${tabSubscribes}`);
  const dropHistory = await tab.evaluate(async (id) => {
    const r = await fetch(`/agents/echo/tasks/${id}:subscribe`, {
      headers: { "A2A-Version": "1.0", "Last-Event-ID": "0" },
    });
    return [...(await r.text()).matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  }, dropId);
  assert.deepEqual(dropped, dropHistory);
  await tab.screenshot({ path: path.join(out, "05b-dropped.png"), fullPage: true });
  await tab.close();
  relay.close();
  checks.push(`drop: resumed with Last-Event-ID ${resumes[0]}, ${dropped.length} events, none twice`);

  // 8. The task list with states (REST ListTasks).
  await page.selectOption("#tasks-agent", "echo");
  await page.click("#tasks-list");
  await page.locator(`#tasks tr[data-task="${canceledId}"]`).waitFor();
  assert.equal(await page.getAttribute(`#tasks tr[data-task="${canceledId}"]`, "data-state"), "CANCELED");
  assert.equal(await page.getAttribute(`#tasks tr[data-task="${resumeId}"]`, "data-state"), "COMPLETED");
  await page.selectOption("#tasks-state", "TASK_STATE_CANCELED");
  await page.click("#tasks-list");
  await page.waitForFunction(
    () => [...document.querySelectorAll("#tasks tbody tr")].every((tr) => tr.dataset.state === "CANCELED"),
  );
  assert.equal(await page.locator("#tasks tbody tr").count(), 1);
  // Pages: 5 at a time, then the next page appended, no task twice.
  await page.selectOption("#tasks-state", "");
  await page.selectOption("#tasks-size", "5");
  await page.click("#tasks-list");
  await page.waitForFunction(() => document.querySelectorAll("#tasks tbody tr").length === 5);
  await page.locator("#tasks-more:not([hidden])").waitFor();
  await page.click("#tasks-more");
  await page.waitForFunction(() => document.querySelectorAll("#tasks tbody tr").length > 5);
  const listed = await page.$$eval("#tasks tbody tr", (trs) => trs.map((tr) => tr.dataset.task));
  assert.equal(new Set(listed).size, listed.length, `no task twice: ${listed}`);
  checks.push(`tasks: listed with states, filtered by state, ${listed.length} over two pages`);
  await shot("06-tasks.png");

  // 8b. The console's SSE parser on awkward framing: CRLF and CR line ends, a block split
  // across chunks, comments, multi-line data, an event without id.
  const parsed = await page.evaluate(async () => {
    const { EventStreamParser } = await import("/console/sse.js");
    const p = new EventStreamParser();
    const chunks = [": ping\r\n\r\nid: 7\r\nda", "ta: {\"a\":", "1}\r\n\r", "\nevent: error\ndata: x\ndata: y\n\n", "data: z\r\r", "data: a\r", "\ndata: b\n\n"];
    return chunks.flatMap((c) => p.push(c));
  });
  assert.deepEqual(parsed, [
    { id: "7", event: "message", data: '{"a":1}' },
    { id: null, event: "error", data: "x\ny" },
    { id: null, event: "message", data: "z" },
    { id: null, event: "message", data: "a\nb" },
  ]);
  checks.push("parser: SSE framing (CRLF, CR, split chunks, comments, multi-line data)");

  // 9. Visible errors (role=alert), dismissed from the keyboard.
  await page.fill("#chat-metadata", "{not json");
  await page.fill("#chat-text", "x");
  await page.press("#chat-text", "Enter");
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.textContent(), /Metadata is not JSON/);
  await page.focus("#error-dismiss");
  await page.keyboard.press("Enter");
  await page.locator("#error").waitFor({ state: "hidden" });
  // A gateway error (an unknown task) is shown there too.
  await page.fill("#task-id", "no-such-task");
  await page.press("#task-id", "Enter");
  await page.locator("#error:not([hidden])").waitFor();
  assert.match(await alert.textContent(), /404/);
  checks.push("errors: shown in role=alert, dismissed with the keyboard");

  assert.deepEqual(dialogs, [], "no dialog fired");
  assert.deepEqual(pageErrors, [], "no uncaught page error");
  console.log(JSON.stringify({ ok: true, checks }));
} catch (e) {
  await shot("failure.png").catch(() => {});
  console.error(`console test failed after: ${checks.join("; ")}`);
  console.error(e);
  if (pageErrors.length) console.error("page errors:", pageErrors);
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
}
