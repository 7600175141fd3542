// The gateway's HTTP fronts as the console uses them: the directory, agent cards, the REST
// ListTasks, the Markdown renderer, and the WebSocket URL. Same origin as the page.

/** The A2A protocol version the console speaks (sent as the `A2A-Version` header or query). */
export const A2A_VERSION = "1.0";

/** An answer of the gateway that is not a success, with its message and reason. */
export class ApiError extends Error {
  constructor(status, message, reason) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

/** The error of a failed answer: the REST envelope `{"error":{code,status,message,details}}`. */
export async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let reason = "";
  try {
    const body = await response.json();
    const e = body.error ?? {};
    message = `${response.status}: ${e.message ?? JSON.stringify(body)}`;
    reason = (e.details ?? []).find((d) => d.reason)?.reason ?? e.status ?? "";
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(response.status, message, reason);
}

async function getJson(path, headers = {}) {
  const response = await fetch(path, { headers: { Accept: "application/json", ...headers } });
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

/** `GET /agents`: `[{name, description, url, cardUrl, available, streaming, skills}]`. */
export async function directory() {
  return (await getJson("/agents")).agents ?? [];
}

/** The agent card of `agent`, as the gateway serves it (URLs rewritten to the gateway). */
export function card(agent) {
  return getJson(`/agents/${encodeURIComponent(agent)}/.well-known/agent-card.json`);
}

/**
 * ListTasks over REST: `{tasks, nextPageToken}` of `agent`, optionally of one state, from
 * `pageToken` on (a previous page's `nextPageToken`; empty for the first page).
 */
export function listTasks(agent, state, pageSize = 20, pageToken = "") {
  const q = new URLSearchParams({ pageSize: String(pageSize) });
  if (state) q.set("status", state);
  if (pageToken) q.set("pageToken", pageToken);
  return getJson(`/agents/${encodeURIComponent(agent)}/tasks?${q}`, { "A2A-Version": A2A_VERSION });
}

/** Markdown → a sanitized HTML fragment (`POST /console/render`, rendered by the gateway). */
export async function renderMarkdown(markdown) {
  const response = await fetch("/console/render", {
    method: "POST",
    headers: { "Content-Type": "text/markdown; charset=utf-8" },
    body: markdown,
  });
  if (!response.ok) throw await errorOf(response);
  return response.text();
}

/** The WebSocket URL of `agent`'s Converse session (the version as a query parameter). */
export function wsUrl(agent) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/agents/${encodeURIComponent(agent)}/ws?A2A-Version=${A2A_VERSION}`;
}

/** The SSE URL of a task subscription (REST binding). */
export function subscribeUrl(agent, taskId) {
  return `/agents/${encodeURIComponent(agent)}/tasks/${encodeURIComponent(taskId)}:subscribe`;
}

/** A fresh message id. */
export function newId() {
  return crypto.randomUUID();
}

/** Bytes as base64 (protobuf JSON's encoding of `bytes`). */
export function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Whether a file is a text document (sent as a text part when the user asks). */
export function isTextFile(file) {
  return file.type.startsWith("text/") || /\.(md|markdown|txt|csv)$/i.test(file.name);
}

/** The media type of a file: the browser's, else `text/markdown` for `.md`, else bytes. */
export function mediaTypeOf(file) {
  if (/\.(md|markdown)$/i.test(file.name)) return "text/markdown";
  return file.type || "application/octet-stream";
}

/**
 * A file as a `Part` (protobuf JSON): a text part with `filename` and `mediaType` for a text
 * document when `asText`, else `raw` bytes (base64).
 */
export async function partOf(file, asText) {
  const base = { filename: file.name, mediaType: mediaTypeOf(file) };
  if (asText && isTextFile(file)) {
    return { ...base, text: await file.text() };
  }
  return { ...base, raw: toBase64(new Uint8Array(await file.arrayBuffer())) };
}
