// The chat panel: one Converse session per agent over the WebSocket front
// (`/agents/{agent}/ws?A2A-Version=1.0`), protobuf-JSON frames: `send` and `cancel` out,
// `ConverseResponse`s in, routed to the turn they answer. A message sent while the agent's
// last task waits for input continues that task (`message.taskId`).

import * as api from "./api.js";
import { $, INTERRUPTED, TERMINAL, TaskPanel, el, showError, taskOf } from "./view.js";
import { watchTask } from "./tasks.js";

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
    const contextId = frame.event.task?.contextId ?? frame.event.statusUpdate?.contextId;
    if (contextId) turn.contextId = contextId;
    if (t?.id && !turn.taskId) {
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
    if (t.taskId && !t.continued && !TERMINAL.has(t.panel.currentState)) return t;
  }
  return null;
}

/** The latest turn with `agent` whose task waits for the user (INPUT_REQUIRED, AUTH_REQUIRED). */
function waitingTurn(agent) {
  const last = chat.turns.findLast((t) => t.node.dataset.agent === agent && t.taskId);
  return last && !last.continued && INTERRUPTED.has(last.panel.currentState) ? last : null;
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
  // A task of this agent that waits for input (or auth) gets this message as its next turn.
  const waiting = waitingTurn(agent);
  if (waiting) {
    message.taskId = waiting.taskId;
    if (waiting.contextId) message.contextId = waiting.contextId;
  }
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
  if (waiting) {
    waiting.continued = true;
    you.append(el("span", ` (answers task …${waiting.taskId.slice(-8)})`, "continues"));
  }
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

