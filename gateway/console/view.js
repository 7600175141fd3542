// Rendering of A2A objects (protobuf JSON) into the page. Agent output is only ever inserted
// as text (`textContent`), except Markdown, which the gateway renders and sanitizes first
// (`POST /console/render`: pulldown-cmark + ammonia).

import { renderMarkdown } from "./api.js";

/** The element with id `id`. */
export const $ = (id) => document.getElementById(id);

/** Shows an error in the page's one `role="alert"` region (dismissed with its button). */
export function showError(error) {
  const text = error instanceof Error ? error.message : String(error);
  $("error-text").textContent = text;
  $("error").hidden = false;
  console.warn("console error:", text);
}

/** States after which a task changes no more. */
export const TERMINAL = new Set([
  "TASK_STATE_COMPLETED",
  "TASK_STATE_FAILED",
  "TASK_STATE_CANCELED",
  "TASK_STATE_REJECTED",
]);

/** States in which a task waits for its client; its stream ends there too. */
export const INTERRUPTED = new Set(["TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"]);

/** `COMPLETED` for `TASK_STATE_COMPLETED`. */
export function shortState(state) {
  return (state ?? "").replace(/^TASK_STATE_/, "") || "?";
}

/** An element with text content (never parsed as HTML). */
export function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

/** The task id and state an event carries, if any. */
export function taskOf(event) {
  if (event.task) return { id: event.task.id, state: event.task.status?.state };
  if (event.statusUpdate) return { id: event.statusUpdate.taskId, state: event.statusUpdate.status?.state };
  if (event.artifactUpdate) return { id: event.artifactUpdate.taskId, state: null };
  return null;
}

/** Whether an event ends its task's stream (terminal or interrupted state, or a message reply). */
export function isFinal(event) {
  if (event.message) return true;
  const s = taskOf(event)?.state;
  return TERMINAL.has(s) || INTERRUPTED.has(s);
}

/** `task:WORKING`, `status:COMPLETED`, `artifact:chunks`, `message` — one line per event. */
export function describe(event) {
  if (event.task) return `task: ${shortState(event.task.status?.state)}`;
  if (event.statusUpdate) {
    const note = textOf(event.statusUpdate.status?.message?.parts);
    return `status: ${shortState(event.statusUpdate.status?.state)}${note ? ` — ${note}` : ""}`;
  }
  if (event.artifactUpdate) {
    const a = event.artifactUpdate.artifact ?? {};
    const text = textOf(a.parts);
    return `artifact: ${a.name || a.artifactId}${event.artifactUpdate.append ? " (+)" : ""}${text ? ` — ${text.slice(0, 80)}` : ""}`;
  }
  if (event.message) return `message: ${textOf(event.message.parts).slice(0, 80)}`;
  return JSON.stringify(event).slice(0, 120);
}

function textOf(parts) {
  return (parts ?? []).filter((p) => typeof p.text === "string").map((p) => p.text).join(" ");
}

function isMarkdown(part) {
  return typeof part.text === "string" && /^text\/markdown\b/i.test(part.mediaType ?? "");
}

/** The size in bytes of base64 `raw` content. */
function rawSize(b64) {
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return Math.floor((b64.length * 3) / 4) - pad;
}

/** Renders parts into `container` (cleared first). Markdown goes through the gateway. */
export function renderParts(parts, container, onError) {
  container.replaceChildren();
  for (const part of parts ?? []) {
    const label = [part.filename, part.mediaType].filter(Boolean).join(", ");
    if (isMarkdown(part)) {
      const report = el("div", null, "report");
      report.setAttribute("aria-busy", "true");
      container.append(label ? el("p", label, "part-label") : "", report);
      renderMarkdown(part.text)
        .then((html) => {
          // Sanitized by the gateway (ammonia); the page's CSP forbids inline script too.
          report.innerHTML = html;
          report.removeAttribute("aria-busy");
          report.dataset.rendered = "true";
        })
        .catch((e) => {
          report.textContent = part.text;
          onError?.(e);
        });
    } else if (typeof part.text === "string") {
      if (label) container.append(el("p", label, "part-label"));
      container.append(el("pre", part.text, "text"));
    } else if (typeof part.raw === "string") {
      const file = el("p", `file ${part.filename || "(unnamed)"} — ${part.mediaType || "application/octet-stream"}, ${rawSize(part.raw)} bytes`, "file");
      file.dataset.bytes = String(rawSize(part.raw));
      container.append(file);
    } else if (typeof part.url === "string") {
      const p = el("p", null, "file");
      if (/^https?:\/\//i.test(part.url)) {
        const a = el("a", part.url);
        a.href = part.url;
        a.rel = "noopener noreferrer";
        a.target = "_blank";
        p.append(label ? `${label}: ` : "", a);
      } else {
        p.textContent = `${label ? `${label}: ` : ""}${part.url}`;
      }
      container.append(p);
    } else if ("data" in part) {
      container.append(el("pre", JSON.stringify(part.data, null, 2), "data"));
    }
  }
}

/**
 * The live picture of one task (or of a direct message reply) built from its events: the
 * state, the last status note, its artifacts (chunks appended) and messages.
 */
export class TaskPanel {
  constructor(container, onError) {
    this.onError = onError;
    this.container = container;
    this.header = el("p", null, "task-line");
    this.state = el("output", "–", "state");
    this.note = el("span", "", "note");
    this.header.append("state ", this.state, " ", this.note);
    this.body = el("div", null, "artifacts");
    container.append(this.header, this.body);
    this.artifacts = new Map();
    this.taskId = null;
    this.currentState = null;
  }

  setState(state) {
    if (!state) return;
    this.currentState = state;
    this.state.textContent = shortState(state);
    this.state.dataset.state = shortState(state);
    this.container.dataset.state = shortState(state);
  }

  /** Applies one StreamResponse. */
  apply(event) {
    const t = taskOf(event);
    if (t?.id && !this.taskId) {
      this.taskId = t.id;
      this.container.dataset.task = t.id;
    }
    if (event.task) {
      this.setState(event.task.status?.state);
      for (const a of event.task.artifacts ?? []) this.artifact(a, false);
    } else if (event.statusUpdate) {
      this.setState(event.statusUpdate.status?.state);
      this.note.textContent = textOf(event.statusUpdate.status?.message?.parts);
    } else if (event.artifactUpdate) {
      this.artifact(event.artifactUpdate.artifact ?? {}, !!event.artifactUpdate.append);
    } else if (event.message) {
      this.setState("TASK_STATE_COMPLETED");
      this.note.textContent = "(direct message reply)";
      this.artifact({ artifactId: event.message.messageId, name: "message", parts: event.message.parts }, false);
    }
  }

  artifact(a, append) {
    const id = a.artifactId || a.name || String(this.artifacts.size);
    let entry = this.artifacts.get(id);
    if (!entry) {
      const node = el("div", null, "artifact");
      node.dataset.artifact = a.name || id;
      const title = el("h4", a.name || id);
      const parts = el("div", null, "parts");
      node.append(title, parts);
      this.body.append(node);
      entry = { node, partsNode: parts, parts: [] };
      this.artifacts.set(id, entry);
    }
    entry.parts = append ? entry.parts.concat(a.parts ?? []) : (a.parts ?? []);
    renderParts(mergeText(entry.parts), entry.partsNode, this.onError);
  }
}

/** Consecutive plain text chunks joined into one part (a streamed artifact reads as one). */
function mergeText(parts) {
  const out = [];
  for (const p of parts) {
    const prev = out[out.length - 1];
    const plain = (x) => typeof x?.text === "string" && !x.filename && !isMarkdown(x);
    if (plain(p) && plain(prev)) out[out.length - 1] = { ...prev, text: `${prev.text} ${p.text}` };
    else out.push(p);
  }
  return out;
}
