// Follows a task's server-sent events (`…/tasks/{id}:subscribe`) with `fetch`, which, unlike
// `EventSource`, can send `A2A-Version` and a `Last-Event-ID` chosen by the page (after a
// reload too). A dropped connection is resumed after the last event seen; the caller dedupes
// by sequence number all the same.

import { A2A_VERSION, errorOf } from "./api.js";

/** Reconnection delays in ms after a drop; the last one repeats. */
const BACKOFF = [250, 500, 1000, 2000, 4000];
/** Consecutive failed connections before giving up. */
const MAX_FAILURES = 8;
/** `status` of an `event: error` (the REST error envelope) after which the stream is resumed. */
const RESUMABLE = new Set(["UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"]);

/** An `event: error` that ends the stream for good. */
class StreamFailed extends Error {}

/**
 * Splits an `text/event-stream` body into events (WHATWG HTML, "Server-sent events",
 * interpretation of the stream): `{id, event, data}` per blank-line-terminated block;
 * comments (`: ping`) are skipped. Unlike `EventSource`, `id` is that of the block itself
 * (null without an `id:` line), as the console keys events by their own sequence number.
 */
export class EventStreamParser {
  constructor() {
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.data = [];
    this.event = "";
    this.id = null;
  }

  /** Feeds text; returns the events it completed. */
  push(text) {
    this.buffer += text;
    const out = [];
    let at;
    while ((at = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      // A CR that ends the chunk may be the first half of a CRLF: wait for the next chunk.
      if (at === this.buffer.length - 1 && this.buffer[at] === "\r") break;
      const line = this.buffer.slice(0, at);
      const eol = this.buffer.startsWith("\r\n", at) ? 2 : 1;
      this.buffer = this.buffer.slice(at + eol);
      if (line === "") {
        if (this.data.length > 0) {
          out.push({ id: this.id, event: this.event || "message", data: this.data.join("\n") });
        }
        this.reset();
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.data.push(value);
      else if (field === "event") this.event = value;
      else if (field === "id" && !value.includes("\0")) this.id = value;
    }
    return out;
  }
}

/**
 * Follows `url` until the task ends or `signal` aborts. Calls `onEvent(seq, streamResponse)`
 * for each event (seq: its `id:`, a number, or null), `onStatus(text)` on connection changes,
 * and returns `{done: true}` when the stream ended for good (204, terminal event, error event).
 *
 * `lastEventId` is where to start: 0 replays the task's whole history; each connection after
 * a drop sends the last id seen. `isFinal(streamResponse)` says whether an event ends the task.
 *
 * @throws {ApiError} an answer that is not a stream (unknown task, bad version, …), or an
 *   `event: error` of the stream, or too many failed reconnections.
 */
export async function follow({ url, lastEventId, onEvent, onStatus, isFinal, signal }) {
  let last = lastEventId;
  let failures = 0;
  for (;;) {
    const headers = { Accept: "text/event-stream", "A2A-Version": A2A_VERSION };
    if (last !== null && last !== undefined) headers["Last-Event-ID"] = String(last);
    let response;
    try {
      onStatus?.(last === null ? "connecting" : `connecting (Last-Event-ID: ${last})`);
      response = await fetch(url, { headers, signal, cache: "no-store" });
    } catch (e) {
      if (signal?.aborted) return { done: false };
      if (++failures > MAX_FAILURES) throw e;
      await sleep(BACKOFF[Math.min(failures, BACKOFF.length) - 1], signal);
      continue;
    }
    if (response.status === 204) {
      onStatus?.("ended (nothing after the last event)");
      return { done: true };
    }
    if (!response.ok) {
      if (response.status >= 500 && ++failures <= MAX_FAILURES) {
        onStatus?.(`gateway answered ${response.status}; retrying`);
        await sleep(BACKOFF[Math.min(failures, BACKOFF.length) - 1], signal);
        continue;
      }
      throw await errorOf(response);
    }
    onStatus?.("streaming");
    const parser = new EventStreamParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let finished = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const e of parser.push(value)) {
          if (signal?.aborted) return { done: false };
          const body = JSON.parse(e.data);
          if (e.event === "error") {
            const err = body.error ?? {};
            // The gateway cut the stream (draining, a slow reader, a deadline): resume; the
            // task itself goes on. Anything else (e.g. the task is gone) ends the view.
            if (RESUMABLE.has(err.status)) {
              onStatus?.(`cut by the gateway (${err.status}); resuming`);
              break;
            }
            throw new StreamFailed(`the stream failed: ${err.message ?? e.data}`);
          }
          const seq = e.id === null ? null : Number(e.id);
          if (seq !== null) last = seq;
          failures = 0;
          onEvent(seq, body);
          if (isFinal?.(body)) finished = true;
        }
      }
    } catch (e) {
      if (signal?.aborted) return { done: false };
      if (e instanceof SyntaxError || e instanceof StreamFailed) throw e;
      // The connection dropped mid-body: resume below.
    } finally {
      reader.releaseLock();
    }
    if (finished) {
      onStatus?.("ended");
      return { done: true };
    }
    if (signal?.aborted) return { done: false };
    // The stream ended before the task did (a proxy cut it, the gateway restarted…): resume
    // after the last event seen.
    if (++failures > MAX_FAILURES) throw new Error("the stream keeps dropping; giving up");
    onStatus?.(`dropped; resuming after event ${last}`);
    await sleep(BACKOFF[Math.min(failures, BACKOFF.length) - 1], signal);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
}
