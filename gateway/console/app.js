// The console page: agent directory, chat (WebSocket), task events (SSE), task list (REST).

import * as api from "./api.js";
import { follow } from "./sse.js";
import { TERMINAL, TaskPanel, describe, el, isFinal, shortState, taskOf } from "./view.js";

const $ = (id) => document.getElementById(id);

// ---- errors: one visible region (role=alert) -------------------------------------------------

function showError(error) {
  const text = error instanceof Error ? error.message : String(error);
  $("error-text").textContent = text;
  $("error").hidden = false;
  console.warn("console error:", text);
}

$("error-dismiss").addEventListener("click", () => {
  $("error").hidden = true;
  $("error-text").textContent = "";
});

// ---- agent directory -------------------------------------------------------------------------

async function loadAgents() {
  $("agents-status").textContent = "loading…";
  let agents;
  try {
    agents = await api.directory();
  } catch (e) {
    $("agents-status").textContent = "";
    showError(e);
    return;
  }
  const list = $("agents");
  list.replaceChildren();
  for (const a of agents) list.append(agentCard(a));
  $("agents-status").textContent = `${agents.length} agents`;
  for (const id of ["chat-agent", "task-agent", "tasks-agent"]) {
    const select = $(id);
    const keep = select.value;
    select.replaceChildren(...agents.map((a) => new Option(a.name, a.name)));
    if (keep && agents.some((a) => a.name === keep)) select.value = keep;
  }
  document.body.dataset.agentsLoaded = "true";
}

function agentCard(a) {
  const li = el("li", null, "card");
  li.dataset.agent = a.name;
  const title = el("h3", a.name);
  const badges = el("p", null, "badges");
  badges.append(el("span", a.available ? "available" : "unavailable", a.available ? "ok" : "bad"));
  if (a.streaming) badges.append(" ", el("span", "streaming", "ok"));
  const skills = el("ul", null, "skills");
  skills.setAttribute("aria-label", `Skills of ${a.name}`);
  for (const s of a.skills ?? []) {
    const item = el("li", null, "skill");
    item.dataset.skill = s.id ?? s.name;
    item.append(el("strong", s.name || s.id), " ", el("span", s.description ?? ""));
    if (s.tags?.length) item.append(" ", el("span", s.tags.join(", "), "tags"));
    skills.append(item);
  }
  const details = el("details", null, "agent-card");
  const summary = el("summary", "Agent card");
  const pre = el("pre", "loading…");
  details.append(summary, pre);
  api
    .card(a.name)
    .then((card) => {
      pre.textContent = JSON.stringify(card, null, 2);
      summary.textContent = `Agent card: ${card.name} ${card.version ?? ""}`;
      li.dataset.cardLoaded = "true";
    })
    .catch((e) => {
      pre.textContent = `no card: ${e.message}`;
    });
  li.append(title, el("p", a.description ?? ""), badges, el("h4", "Skills"), skills, details);
  return li;
}

$("agents-refresh").addEventListener("click", loadAgents);

// ---- chat over the WebSocket front -----------------------------------------------------------

/** One Converse session per agent; turns keyed by message id and by task id. */
const chat = {
  ws: null,
  agent: null,
  opening: null,
  byMessage: new Map(),
  byTask: new Map(),
  turns: [],
};

function setConnection(text) {
  $("chat-connection").textContent = text;
}

/** The open session with `agent` (opened, or reopened, as needed). */
function session(agent) {
  if (chat.ws && chat.agent === agent && chat.ws.readyState === WebSocket.OPEN) {
    return Promise.resolve(chat.ws);
  }
  if (chat.opening && chat.agent === agent) return chat.opening;
  if (chat.ws) chat.ws.close(1000, "switching agents");
  chat.agent = agent;
  setConnection(`connecting to ${agent}…`);
  chat.opening = new Promise((resolve, reject) => {
    const ws = new WebSocket(api.wsUrl(agent));
    chat.ws = ws;
    ws.addEventListener("open", () => {
      setConnection(`connected to ${agent}`);
      chat.opening = null;
      resolve(ws);
    });
    ws.addEventListener("message", (m) => onFrame(m.data));
    ws.addEventListener("close", (c) => {
      const why = `${c.code}${c.reason ? ` ${c.reason}` : ""}`;
      reject(new Error(`the WebSocket session with ${agent} closed before it opened (${why})`));
      if (chat.ws !== ws) return; // an earlier session, replaced by the current one
      chat.ws = null;
      chat.opening = null;
      setConnection(`closed (${why})`);
      if (c.code !== 1000 && c.code !== 1001 && c.code !== 1005) {
        showError(`the WebSocket session with ${agent} closed: ${why}`);
      }
    });
  });
  return chat.opening;
}

function onFrame(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    showError("the gateway sent a frame that is not JSON");
    return;
  }
  const turn = chat.byMessage.get(frame.inReplyTo) ?? chat.byTask.get(frame.inReplyTo);
  if (!turn) return;
  if (frame.error) {
    const e = frame.error;
    turn.panel.note.textContent = `error ${e.code}${e.reason ? ` ${e.reason}` : ""}: ${e.message}`;
    turn.node.dataset.error = e.reason || String(e.code);
    showError(`${chat.agent}: ${e.message}`);
  } else if (frame.event) {
    turn.panel.apply(frame.event);
    const t = taskOf(frame.event);
    if (t?.id && !chat.byTask.has(t.id)) {
      chat.byTask.set(t.id, turn);
      turn.taskId = t.id;
      turn.watch.hidden = false;
      turn.watch.textContent = `Watch the events of task …${t.id.slice(-8)}`;
    }
  }
  updateCancel();
}

function activeTurn() {
  for (let i = chat.turns.length - 1; i >= 0; i--) {
    const t = chat.turns[i];
    if (t.taskId && !TERMINAL.has(t.panel.currentState)) return t;
  }
  return null;
}

function updateCancel() {
  $("chat-cancel").disabled = !activeTurn();
}

function parseMetadata() {
  const raw = $("chat-metadata").value.trim();
  if (!raw) return undefined;
  let value;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    throw new Error(`Metadata is not JSON: ${e.message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("Metadata must be a JSON object, e.g. {\"chunks\": 5}");
  }
  return value;
}

$("chat-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const agent = $("chat-agent").value;
  const text = $("chat-text").value;
  const files = [...$("chat-files").files];
  let metadata;
  let parts;
  try {
    metadata = parseMetadata();
    parts = [];
    if (text.trim()) parts.push({ text });
    for (const f of files) parts.push(await api.partOf(f, $("chat-files-as-text").checked));
    if (parts.length === 0) throw new Error("Type a message or choose a file to send.");
  } catch (e) {
    showError(e);
    return;
  }
  const message = { messageId: api.newId(), role: "ROLE_USER", parts };
  if (metadata) message.metadata = metadata;
  let ws;
  try {
    ws = await session(agent);
  } catch (e) {
    showError(e);
    return;
  }
  const node = el("li", null, "turn");
  node.dataset.agent = agent;
  const you = el("div", null, "you");
  you.append(el("strong", "you → " + agent + ": "), el("span", text, "said"));
  for (const f of files) you.append(el("span", ` [file ${f.name}, ${f.size} bytes]`, "attached"));
  const reply = el("div", null, "reply");
  const watch = el("button", "Watch task events");
  watch.type = "button";
  watch.hidden = true;
  watch.className = "watch";
  node.append(you, reply, watch);
  $("chat-log").append(node);
  const turn = { node, panel: new TaskPanel(reply, showError), taskId: null, watch };
  watch.addEventListener("click", () => watchTask(agent, turn.taskId));
  chat.byMessage.set(message.messageId, turn);
  chat.turns.push(turn);
  ws.send(JSON.stringify({ send: { message } }));
  $("chat-text").value = "";
  $("chat-files").value = "";
  node.scrollIntoView({ block: "nearest" });
});

$("chat-cancel").addEventListener("click", () => {
  const turn = activeTurn();
  if (!turn || !chat.ws || chat.ws.readyState !== WebSocket.OPEN) return;
  chat.ws.send(JSON.stringify({ cancel: { id: turn.taskId } }));
  turn.panel.note.textContent = "cancel requested…";
});

// ---- task events over SSE, resumed with Last-Event-ID ----------------------------------------

const STORE = "switchyard.console.task:";

const watcher = { abort: null, key: null, events: [], seen: new Set(), panel: null };

function persist() {
  try {
    sessionStorage.setItem(watcher.key, JSON.stringify(watcher.events));
  } catch {
    // Storage full: a reload replays from the start instead.
  }
}

function showEvent(seq, event) {
  const li = el("li", `${seq === null ? "·" : `#${seq}`} ${describe(event)}`);
  if (seq !== null) li.dataset.seq = String(seq);
  $("task-events").append(li);
  $("task-count").textContent = String($("task-events").children.length);
  watcher.panel.apply(event);
  const state = taskOf(event)?.state ?? (event.message ? "TASK_STATE_COMPLETED" : null);
  if (state) {
    $("task-state").textContent = shortState(state);
    $("task-state").dataset.state = shortState(state);
  }
}

function onTaskEvent(seq, event) {
  if (seq !== null) {
    if (watcher.seen.has(seq)) return; // already shown: never twice
    watcher.seen.add(seq);
  }
  watcher.events.push({ seq, event });
  persist();
  showEvent(seq, event);
}

/** Streams the events of `agent`'s task `id`, resuming where this tab left off. */
async function watchTask(agent, id) {
  if (!agent || !id) return;
  watcher.abort?.abort();
  const abort = new AbortController();
  watcher.abort = abort;
  watcher.key = `${STORE}${agent}/${id}`;
  $("task-agent").value = agent;
  $("task-id").value = id;
  history.replaceState(null, "", `#task=${encodeURIComponent(agent)}/${encodeURIComponent(id)}`);
  $("task-events").replaceChildren();
  $("task-artifacts").replaceChildren();
  $("task-state").textContent = "–";
  $("task-state").dataset.state = "";
  delete $("task-section").dataset.done;
  watcher.panel = new TaskPanel($("task-artifacts"), showError);
  watcher.seen = new Set();
  watcher.events = [];
  // Events this tab already showed (before a reload) are shown again from storage; the
  // stream resumes after the last of them.
  let stored = [];
  try {
    stored = JSON.parse(sessionStorage.getItem(watcher.key) ?? "[]");
  } catch {
    stored = [];
  }
  let last = 0;
  for (const { seq, event } of stored) {
    if (seq !== null && watcher.seen.has(seq)) continue;
    if (seq !== null) watcher.seen.add(seq);
    watcher.events.push({ seq, event });
    showEvent(seq, event);
    if (seq !== null) last = Math.max(last, seq);
  }
  $("task-section").scrollIntoView({ block: "start" });
  if (stored.length > 0 && stored.some((e) => isFinal(e.event))) {
    $("task-stream").textContent = "ended (from this tab's history)";
    $("task-section").dataset.done = "true";
    return;
  }
  try {
    const r = await follow({
      url: api.subscribeUrl(agent, id),
      lastEventId: last,
      onEvent: onTaskEvent,
      onStatus: (s) => {
        $("task-stream").textContent = s;
      },
      isFinal,
      signal: abort.signal,
    });
    if (r.done) $("task-section").dataset.done = "true";
  } catch (e) {
    $("task-stream").textContent = "failed";
    showError(e);
  }
}

$("task-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  watchTask($("task-agent").value, $("task-id").value.trim());
});

$("task-stop").addEventListener("click", () => {
  watcher.abort?.abort();
  $("task-stream").textContent = "stopped";
});

// ---- task list over REST ---------------------------------------------------------------------

$("tasks-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const agent = $("tasks-agent").value;
  let page;
  try {
    page = await api.listTasks(agent, $("tasks-state").value);
  } catch (e) {
    showError(e);
    return;
  }
  const rows = (page.tasks ?? []).map((t) => {
    const tr = el("tr");
    tr.dataset.task = t.id;
    tr.dataset.state = shortState(t.status?.state);
    const open = el("button", "Watch");
    open.type = "button";
    open.setAttribute("aria-label", `Watch the events of task ${t.id}`);
    open.addEventListener("click", () => watchTask(agent, t.id));
    const action = el("td");
    action.append(open);
    tr.append(
      el("td", t.id, "mono"),
      el("td", shortState(t.status?.state), "state"),
      el("td", t.status?.timestamp ?? ""),
      el("td", t.contextId ?? "", "mono"),
      action,
    );
    return tr;
  });
  $("tasks").tBodies[0].replaceChildren(...rows);
  $("tasks-caption").textContent = `${rows.length} tasks of ${agent}${page.nextPageToken ? " (more exist)" : ""}`;
});

// ---- start -----------------------------------------------------------------------------------

await loadAgents();
const resume = /^#task=([^/]+)\/(.+)$/.exec(location.hash);
if (resume) watchTask(decodeURIComponent(resume[1]), decodeURIComponent(resume[2]));
