/**
 * The page script of the Chromium test (test/chromium.ts bundles it with esbuild): the
 * TypeScript client over gRPC-Web (`@connectrpc/connect-web`) from a browser page, against an
 * agent behind the gateway. Exposes `window.switchyardChecks(baseUrl)`, which returns one line
 * per check (`ok: …` or `FAIL: …`).
 */
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  A2AService,
  AgentService,
  MessageSchema,
  Role,
  TaskState,
  switchyardInterceptor,
  type Message,
} from "../src/index.js";

function message(text: string, metadata: Record<string, number> = {}): Message {
  return create(MessageSchema, {
    messageId: crypto.randomUUID(),
    role: Role.USER,
    parts: [{ content: { case: "text", value: text } }],
    metadata,
  });
}

async function switchyardChecks(baseUrl: string): Promise<string[]> {
  const lines: string[] = [];
  const check = (ok: boolean, what: string) => lines.push(`${ok ? "ok" : "FAIL"}: ${what}`);
  const transport = createGrpcWebTransport({
    baseUrl,
    interceptors: [switchyardInterceptor()],
  });
  const svc = createClient(AgentService, transport);
  const a2a = createClient(A2AService, transport);
  const opts = { timeoutMs: 30_000 };
  try {
    const r = await svc.sendMessage({ message: message("from the browser") }, opts);
    const task = r.payload.case === "task" ? r.payload.value : undefined;
    check(
      task?.status?.state === TaskState.COMPLETED &&
        task.artifacts[0].parts[0].content.value === "from the browser",
      "gRPC-Web unary AgentService.SendMessage: COMPLETED, the artifact echoes the text",
    );

    const kinds: string[] = [];
    let last: TaskState | undefined;
    let taskId = "";
    for await (const e of svc.sendStreamingMessage(
      { message: message("streamed", { chunks: 3, chunk_delay_ms: 50 }) },
      opts,
    )) {
      kinds.push(e.payload.case ?? "none");
      if (e.payload.case === "task") taskId = e.payload.value.id;
      if (e.payload.case === "statusUpdate") last = e.payload.value.status?.state;
    }
    check(
      kinds[0] === "task" &&
        kinds.filter((k) => k === "artifactUpdate").length === 4 &&
        last === TaskState.COMPLETED,
      `gRPC-Web server-streaming AgentService.SendStreamingMessage: task, 3 chunks + echo, COMPLETED (${kinds.join(",")})`,
    );

    const got = await a2a.getTask({ id: taskId }, opts);
    check(
      got.id === taskId && got.status?.state === TaskState.COMPLETED,
      "gRPC-Web unary A2AService.GetTask: the streamed task, COMPLETED",
    );
  } catch (err) {
    check(false, `call failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return lines;
}

(globalThis as unknown as { switchyardChecks: typeof switchyardChecks }).switchyardChecks =
  switchyardChecks;
