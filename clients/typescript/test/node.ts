/**
 * The generated TypeScript client over the gRPC transport (`@connectrpc/connect-node`) against
 * an agent. Run by the Rust end-to-end tests (tests/e2e/clients.rs) after `npm run build:test`:
 *
 *   node dist-test/test/node.js HOST:PORT [AGENT]
 *
 * HOST:PORT is an agent's gRPC port, or the gateway's port with AGENT naming the agent (sent as
 * `x-switchyard-agent`). Runs the four AgentService call kinds (unary, server streaming, client
 * streaming, bidirectional with a cancel and a half-close), A2A SendMessage / SubscribeToTask /
 * GetTask, a call without `a2a-version` (refused) and grpc.health.v1 Check, against the echo
 * agent. Prints one line per check and `ALL OK`; exits 1 on the first failure.
 */
import { randomUUID } from "node:crypto";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  A2AService,
  AgentService,
  ConverseRequestSchema,
  Health,
  HealthCheckResponse_ServingStatus,
  MessageSchema,
  Role,
  SendMessagePartsRequestSchema,
  TaskState,
  switchyardInterceptor,
  type ConverseRequest,
  type Message,
} from "../src/index.js";

/** Every call's deadline, sent as `grpc-timeout`. */
const TIMEOUT_MS = 30_000;

function check(ok: boolean, what: string): void {
  if (!ok) {
    console.log(`FAIL: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

function message(text: string, metadata: JsonObject = {}): Message {
  return create(MessageSchema, {
    messageId: randomUUID(),
    role: Role.USER,
    parts: [{ content: { case: "text", value: text } }],
    metadata,
  });
}

/** An async iterable fed by `push`, ended by `end` (the half-close of a client stream). */
class Outbox<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private done = false;
  private wake: (() => void) | undefined;
  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }
  end(): void {
    this.done = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
      } else if (this.done) {
        return;
      } else {
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    }
  }
}

async function main(target: string, agent: string | undefined): Promise<void> {
  const transport = createGrpcTransport({
    baseUrl: `http://${target}`,
    interceptors: [switchyardInterceptor({ agent })],
  });
  const svc = createClient(AgentService, transport);
  const a2a = createClient(A2AService, transport);
  const opts = { timeoutMs: TIMEOUT_MS };

  const health = createClient(Health, transport);
  const r = await health.check({ service: "" }, opts);
  check(r.status === HealthCheckResponse_ServingStatus.SERVING, "health: SERVING");

  // Unary.
  const unary = await svc.sendMessage({ message: message("hello") }, opts);
  check(
    unary.payload.case === "task" &&
      unary.payload.value.status?.state === TaskState.COMPLETED &&
      unary.payload.value.artifacts[0].parts[0].content.value === "hello",
    "unary SendMessage: COMPLETED, the artifact echoes the text",
  );

  // Server streaming.
  const events = [];
  for await (const e of svc.sendStreamingMessage(
    { message: message("streamed", { chunks: 3 }) },
    opts,
  )) {
    events.push(e);
  }
  const last = events[events.length - 1].payload;
  check(
    events[0].payload.case === "task" &&
      events.filter((e) => e.payload.case === "artifactUpdate").length === 4 &&
      last.case === "statusUpdate" &&
      last.value.status?.state === TaskState.COMPLETED,
    "server-streaming SendStreamingMessage: task, 3 chunks + echo artifact, COMPLETED",
  );

  // Client streaming: header, then a raw part, then a chunk appended to it.
  async function* frames() {
    yield create(SendMessagePartsRequestSchema, {
      frame: { case: "header", value: { message: message("head") } },
    });
    yield create(SendMessagePartsRequestSchema, {
      frame: {
        case: "part",
        value: {
          content: { case: "raw", value: new Uint8Array([97, 98]) },
          filename: "f.bin",
          mediaType: "application/octet-stream",
        },
      },
    });
    yield create(SendMessagePartsRequestSchema, {
      frame: { case: "rawChunk", value: new Uint8Array([99, 100]) },
    });
  }
  const parts = await svc.sendMessageParts(frames(), opts);
  const assembled = parts.payload.case === "task" ? parts.payload.value : undefined;
  const ap = assembled?.artifacts[0]?.parts ?? [];
  check(
    assembled?.status?.state === TaskState.COMPLETED &&
      ap.length === 2 &&
      ap[0].content.value === "head" &&
      ap[1].content.case === "raw" &&
      new TextDecoder().decode(ap[1].content.value) === "abcd" &&
      ap[1].filename === "f.bin",
    "client-streaming SendMessageParts: header + part + raw_chunk assembled",
  );

  // Bidirectional: two sends, cancel the slow one, half-close.
  const outbox = new Outbox<ConverseRequest>();
  const quick = message("quick");
  const slow = message("slow", { delay_ms: 30000 });
  outbox.push(create(ConverseRequestSchema, { request: { case: "send", value: { message: quick } } }));
  outbox.push(create(ConverseRequestSchema, { request: { case: "send", value: { message: slow } } }));
  const states = new Map<string, TaskState>();
  const repliesTo = new Set<string>();
  let slowTask: string | undefined;
  for await (const frame of svc.converse(outbox, opts)) {
    if (frame.payload.case !== "event") {
      check(false, `bidirectional Converse: every frame is an event, got ${frame.payload.case}`);
      return;
    }
    repliesTo.add(frame.inReplyTo);
    const e = frame.payload.value.payload;
    if (e.case === "task") {
      states.set(e.value.id, e.value.status?.state ?? TaskState.UNSPECIFIED);
      if (frame.inReplyTo === slow.messageId && slowTask === undefined) {
        slowTask = e.value.id;
        outbox.push(
          create(ConverseRequestSchema, { request: { case: "cancel", value: { id: slowTask } } }),
        );
        outbox.end(); // half-close: the server finishes the running tasks
      }
    } else if (e.case === "statusUpdate") {
      states.set(e.value.taskId, e.value.status?.state ?? TaskState.UNSPECIFIED);
    }
  }
  check(
    repliesTo.has(quick.messageId) && repliesTo.has(slow.messageId),
    "bidirectional Converse: frames answer both sends",
  );
  check(
    slowTask !== undefined &&
      states.get(slowTask) === TaskState.CANCELED &&
      [...states.values()].includes(TaskState.COMPLETED),
    "bidirectional Converse: quick task COMPLETED, slow task CANCELED, OK after half-close",
  );

  // A2A: SendMessage returning at once, SubscribeToTask to the end, GetTask. The task works for
  // 1.5 s (5 chunks, 300 ms apart), so it is still running when the subscription comes.
  const started = await a2a.sendMessage(
    {
      message: message("later", { chunks: 5, chunk_delay_ms: 300 }),
      configuration: { returnImmediately: true },
    },
    opts,
  );
  const task = started.payload.case === "task" ? started.payload.value : undefined;
  check(
    task !== undefined &&
      (task.status?.state === TaskState.SUBMITTED || task.status?.state === TaskState.WORKING),
    "A2A SendMessage with return_immediately: the task is still running",
  );
  const taskId = task!.id;
  const sub = [];
  for await (const e of a2a.subscribeToTask({ id: taskId }, opts)) {
    sub.push(e);
  }
  const end = sub[sub.length - 1].payload;
  check(
    sub[0].payload.case === "task" &&
      sub[0].payload.value.id === taskId &&
      end.case === "statusUpdate" &&
      end.value.status?.state === TaskState.COMPLETED,
    "A2A SubscribeToTask: the task first, then events until COMPLETED",
  );
  const got = await a2a.getTask({ id: taskId }, opts);
  check(
    got.status?.state === TaskState.COMPLETED &&
      got.artifacts.some((a) => a.name === "echo" && a.parts[0].content.value === "later"),
    "A2A GetTask: COMPLETED with the echo artifact",
  );

  // The contract: a call without a2a-version is refused.
  const bare = createClient(
    A2AService,
    createGrpcTransport({
      baseUrl: `http://${target}`,
      interceptors: agent === undefined ? [] : [
        (next) => (req) => {
          req.header.set("x-switchyard-agent", agent);
          return next(req);
        },
      ],
    }),
  );
  try {
    await bare.getTask({ id: taskId }, opts);
    check(false, "a call without a2a-version is refused");
  } catch (err) {
    const code = ConnectError.from(err).code;
    check(
      code === Code.FailedPrecondition,
      `a call without a2a-version is refused with FAILED_PRECONDITION (${Code[code]})`,
    );
  }
  console.log("ALL OK");
}

const [target, agent] = process.argv.slice(2);
main(target, agent).catch((err) => {
  console.log(`FAIL: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
