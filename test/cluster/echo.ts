import * as grpc from "@grpc/grpc-js";
import { fork } from "node:child_process";
import { listenGrpc } from "../../core/api/grpc-listen.ts";
const pass = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
const def = { put: { path: "/x.E/Put", requestStream: false, responseStream: false, ...pass } };
if (process.argv[2] === "server") {
  const s = new grpc.Server();
  s.addService(def, { put: (call: any, cb: any) => cb(null, Buffer.alloc(8)) });
  const port = await listenGrpc(s, "127.0.0.1:0", grpc.ServerCredentials.createInsecure());
  process.send!(port);
} else {
  const child = fork(new URL(import.meta.url).pathname, ["server"], { execArgv: ["--import", "tsx"] });
  const port = await new Promise<number>((r) => child.once("message", (m) => r(m as number)));
  const C = grpc.makeGenericClientConstructor(def, "E");
  const clients = Array.from({ length: 100 }, () => new C(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }) as any);
  let n = 0; const t0 = performance.now();
  await Promise.all(Array.from({ length: 1000 }, async (_, i) => { while (performance.now() - t0 < 4000) { await new Promise((r, j) => clients[i % 100].put(Buffer.alloc(280), (e: any, v: any) => e ? j(e) : r(v))); n++; } }));
  console.log("grpc-js echo, 1000 clients / 100 channels:", Math.round(n / 4), "rps");
  child.kill();
  process.exit(0);
}
