/**
 * Switchyard's TypeScript client: the protobuf-es messages and service descriptors generated from
 * `proto/` (regenerate with `npx buf generate` at the repository root), and a Connect interceptor
 * that adds the metadata every Switchyard call needs.
 *
 * Make a client with `createClient(AgentService, transport)` from `@connectrpc/connect`, over
 * `createGrpcTransport` (`@connectrpc/connect-node`, Node: all four call kinds) or
 * `createGrpcWebTransport` (`@connectrpc/connect-web`, browsers: unary and server streaming).
 */
import type { Interceptor } from "@connectrpc/connect";

export * from "./gen/lf/a2a/v1/a2a_pb.js";
export * from "./gen/switchyard/v1/agent_pb.js";
export * from "./gen/grpc/health/v1/health_pb.js";

/** The A2A protocol version Switchyard serves (`a2a-version` metadata, A2A v1.0.1 §3.6). */
export const A2A_VERSION = "1.0";

/** Options of {@link switchyardInterceptor}. */
export interface SwitchyardOptions {
  /**
   * The agent to reach through the gateway's gRPC port (`x-switchyard-agent` metadata). Leave
   * it out when calling an agent's own port.
   */
  agent?: string;
  /** The A2A protocol version to send; default {@link A2A_VERSION}. */
  a2aVersion?: string;
}

/**
 * A Connect interceptor that sends `a2a-version` (required: agents refuse A2AService and
 * AgentService calls without it with FAILED_PRECONDITION) and, with `agent`,
 * `x-switchyard-agent` on every call. A header the caller already set is kept.
 *
 * ```ts
 * const transport = createGrpcTransport({
 *   baseUrl: "http://127.0.0.1:8080",
 *   interceptors: [switchyardInterceptor({ agent: "echo" })],
 * });
 * ```
 */
export function switchyardInterceptor(options: SwitchyardOptions = {}): Interceptor {
  const version = options.a2aVersion ?? A2A_VERSION;
  return (next) => async (req) => {
    if (!req.header.has("a2a-version")) {
      req.header.set("a2a-version", version);
    }
    if (options.agent !== undefined && !req.header.has("x-switchyard-agent")) {
      req.header.set("x-switchyard-agent", options.agent);
    }
    return next(req);
  };
}
