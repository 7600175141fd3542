// The task panels: one task's events over SSE (resumed with `Last-Event-ID` after a drop or a
// reload, never shown twice), and the task list over REST (ListTasks).

import * as api from "./api.js";
import { follow } from "./sse.js";
import { $, TaskPanel, describe, el, isFinal, shortState, showError, taskOf } from "./view.js";

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
export async function watchTask(agent, id) {
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

/** The query of the list shown, and where its next page starts. */
const listing = { agent: null, state: "", pageSize: 20, next: "" };

/** Lists a page of tasks: the first (`more` false) or the next one, appended. */
async function listTasks(more) {
  if (!more) {
    listing.agent = $("tasks-agent").value;
    listing.state = $("tasks-state").value;
    listing.pageSize = Number($("tasks-size").value);
    listing.next = "";
  }
  let page;
  try {
    page = await api.listTasks(listing.agent, listing.state, listing.pageSize, listing.next);
  } catch (e) {
    showError(e);
    return;
  }
  const agent = listing.agent;
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
  const body = $("tasks").tBodies[0];
  if (more) body.append(...rows);
  else body.replaceChildren(...rows);
  listing.next = page.nextPageToken ?? "";
  $("tasks-more").hidden = !listing.next;
  const shown = body.rows.length;
  $("tasks-caption").textContent = `${shown} tasks of ${agent}${listing.next ? " (more exist)" : ""}`;
}

$("tasks-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  listTasks(false);
});

$("tasks-more").addEventListener("click", () => listTasks(true));
