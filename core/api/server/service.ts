// How a service of the API is written once and served by both transports: its generated
// descriptor, one handler per method, one access policy per method and one validator per
// method. defineService checks at start-up that no method lacks any of the three, so a method
// cannot be served unauthenticated or unvalidated by omission.
import type { DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { Logger } from "../../raft/types.ts";
import type { ReadMode, Replica } from "../../state/replica.ts";

export type RoleName = "administrator" | "operator" | "auditor";

export interface ObjectGrant {
  objectKind: string;
  /** "*" for every object of the kind. */
  objectId: string;
  role: RoleName;
}

/** The authenticated caller of a request. */
export interface Principal {
  userId: string;
  username: string;
  role: RoleName;
  grants: readonly ObjectGrant[];
  credential: { kind: "session" | "token"; id: string };
}

/** Permission of a method callable without authentication (Login). */
export const PUBLIC = "public";

export interface MethodPolicy<Req = unknown> {
  /** Checked with rbac.authorize (PUBLIC: no authentication at all). */
  permission: string;
  /** Mutations need a CSRF token with session cookies, are never linearizable reads, and are audited. */
  mutation: boolean;
  /** The object the request acts on ("user/alice"): for per-object grants and the audit log. */
  object?: (req: Req) => string | undefined;
}

/** Sets or clears the browser session cookie (HTTP only; a no-op over gRPC). */
export interface SessionCookieSink {
  set(sessionId: string, expiresAtMs: number): void;
  clear(): void;
}

export interface HandlerContext {
  /** null only for PUBLIC methods. */
  principal: Principal | null;
  replica: Replica;
  readMode: ReadMode;
  logger: Logger;
  remoteAddress: string;
  nowMs: number;
  transport: "grpc" | "http";
  sessionCookie: SessionCookieSink;
  /** Aborted when the client goes away (streams stop on it). */
  signal: AbortSignal;
  /** Facts the handler adds to the audit entry of a mutation (never secrets). */
  auditDetail: Record<string, unknown>;
  /** Set by a handler when the audited object is only known once it ran (a new token's id). */
  auditObject?: string;
}

type In<M> = M extends { input: infer I extends DescMethod["input"] } ? MessageShape<I> : never;
type Out<M> = M extends { output: infer O extends DescMethod["output"] } ? MessageInitShape<O> : never;

export type Handlers<S extends GenServiceMethods> = {
  [K in keyof S]: S[K]["methodKind"] extends "server_streaming"
    ? (req: In<S[K]>, ctx: HandlerContext) => AsyncIterable<Out<S[K]>>
    : (req: In<S[K]>, ctx: HandlerContext) => Promise<Out<S[K]>>;
};

export type Policies<S extends GenServiceMethods> = { [K in keyof S]: MethodPolicy<In<S[K]>> };

/** Throws ApiError invalid_argument naming the field; must not change anything. */
export type Validators<S extends GenServiceMethods> = { [K in keyof S]: (req: In<S[K]>) => void };

export interface ServiceDefinition<S extends GenServiceMethods> {
  descriptor: GenService<S>;
  handlers: Handlers<S>;
  policy: Policies<S>;
  validate: Validators<S>;
}

/** A service with its types erased, as the adapters see it. */
export interface RegisteredService {
  descriptor: GenService<GenServiceMethods>;
  methods: Map<string, RegisteredMethod>;
}

export interface RegisteredMethod {
  desc: DescMethod;
  /** "UserService.CreateUser": the action name in the audit log. */
  action: string;
  policy: MethodPolicy;
  validate: (req: unknown) => void;
  unary?: (req: unknown, ctx: HandlerContext) => Promise<unknown>;
  stream?: (req: unknown, ctx: HandlerContext) => AsyncIterable<unknown>;
}

/** Checks the service is complete (every method has a handler, a policy and a validator). */
export function defineService<S extends GenServiceMethods>(def: ServiceDefinition<S>): RegisteredService {
  const methods = new Map<string, RegisteredMethod>();
  const handlers = def.handlers as Record<string, (req: unknown, ctx: HandlerContext) => unknown>;
  const policies = def.policy as Record<string, MethodPolicy | undefined>;
  const validators = def.validate as Record<string, ((req: unknown) => void) | undefined>;
  for (const m of def.descriptor.methods) {
    const handler = handlers[m.localName];
    const policy = policies[m.localName];
    const validate = validators[m.localName];
    const where = `defining ${def.descriptor.name}.${m.name}`;
    if (typeof handler !== "function") throw new Error(`${where}: no handler`);
    if (!policy) throw new Error(`${where}: no access policy`);
    if (typeof validate !== "function") throw new Error(`${where}: no validator`);
    if (m.methodKind !== "unary" && m.methodKind !== "server_streaming") throw new Error(`${where}: ${m.methodKind} methods are not supported`);
    const method: RegisteredMethod = { desc: m, action: `${def.descriptor.name}.${m.name}`, policy: policy as MethodPolicy, validate };
    if (m.methodKind === "unary") method.unary = handler as RegisteredMethod["unary"];
    else method.stream = handler as RegisteredMethod["stream"];
    methods.set(m.name, method);
  }
  return { descriptor: def.descriptor as unknown as GenService<GenServiceMethods>, methods };
}
