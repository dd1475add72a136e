// Three real `trivet serve` daemons set up as a user would: init, a token, two joins; status
// shows three voters; a mutation through a follower; kill -9 of the leader, mutations go on
// through the others, the old leader restarts and catches up; bad tokens and a peer without a
// certificate are refused with clear errors.
import fs from "node:fs";
import path from "node:path";
import tls from "node:tls";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../core/api/server/errors.ts";
import { EventService } from "../../core/api/gen/trivet/v1/events_pb.ts";
import { Role, UserService } from "../../core/api/gen/trivet/v1/users_pb.ts";
import { createJoinToken } from "../../core/cluster/tokens.ts";
import { cryptoRandom } from "../../core/cluster/pki.ts";
import { cli, DaemonCluster, type DaemonNode } from "./daemon-cluster.ts";

describe("a cluster of three daemons", () => {
  const c = new DaemonCluster();
  let n1: DaemonNode, n2: DaemonNode, n3: DaemonNode;
  const joinMs: number[] = [];

  beforeAll(async () => {
    n1 = await c.allocate("n1");
    n2 = await c.allocate("n2");
    n3 = await c.allocate("n3");
    c.init(n1);
    c.serve(n1);
    await c.login(n1);
    for (const [n, voters] of [[n2, 2], [n3, 3]] as const) {
      const t0 = Date.now();
      const token = await c.token(n1);
      const r = c.join(n, token);
      expect(r.code, r.stderr).toBe(0);
      c.serve(n);
      // Two members keep one voter (the second stays a learner); the third makes three voters.
      await c.waitForVoters(n1, voters === 2 ? 1 : 3);
      joinMs.push(Date.now() - t0);
    }
  });

  afterAll(async () => {
    await c.stop();
  });

  it("shows three voters, one leader, every node healthy", async () => {
    const s = await c.waitForVoters(n3, 3);
    console.log(`join time (token → caught up, counted as voter or learner): ${joinMs.map((m) => `${m} ms`).join(", ")}`);
    expect(s.nodes.map((n) => n.name).sort()).toEqual(["n1", "n2", "n3"]);
    expect(s.nodes.filter((n) => n.leader)).toHaveLength(1);
    await DaemonCluster.retry(async () => {
      const st = await c.status(n2);
      if (st.nodes.some((n) => n.health !== 1)) throw new Error(`health ${st.nodes.map((n) => `${n.name}=${n.health}`).join(" ")}`);
    }, 20_000);
    // The replicated nodes table records the promotions too, on every node.
    await DaemonCluster.retry(async () => {
      for (const n of [n1, n2, n3]) {
        const db = new Database(path.join(n.dataDir, "state", "state.db"), { readonly: true, fileMustExist: true });
        try {
          const rows = db.prepare("SELECT name, role FROM nodes ORDER BY id").all() as { name: string; role: string }[];
          if (rows.length !== 3 || rows.some((r) => r.role !== "voter")) throw new Error(`${n.name}'s state.db records ${rows.map((r) => `${r.name}=${r.role}`).join(" ")}`);
        } finally {
          db.close();
        }
      }
    }, 20_000);
  });

  it("takes a mutation through a follower and serves it everywhere", async () => {
    const s = await c.status(n1);
    const follower = [n1, n2, n3].find((n) => s.nodes.find((x) => x.name === n.name && !x.leader))!;
    // The event stream of another node sees the mutation (its audit entry) arrive.
    const watcher = c.client(n3);
    const ac = new AbortController();
    const seen = watcher.stream(EventService, "watch", { kinds: ["audit"], objectPrefix: "user/op1" }, (e) => (e.object === "user/op1" ? false : undefined), ac.signal);
    await new Promise((r) => setTimeout(r, 500));
    const cl = c.client(follower);
    await cl.call(UserService, "createUser", { username: "op1", password: "operator-password-1", role: Role.OPERATOR });
    cl.close();
    const timeout = setTimeout(() => ac.abort(), 10_000);
    await seen;
    clearTimeout(timeout);
    watcher.close();
    expect(ac.signal.aborted, "no audit event for user/op1 within 10 s").toBe(false);
    for (const n of [n1, n2, n3]) {
      const r = c.client(n, { linearizable: true });
      const users = await r.call(UserService, "listUsers", {});
      r.close();
      expect(users.users.map((u) => u.username)).toContain("op1");
    }
  });

  it("keeps working when the leader is killed, and the old leader catches up on restart", async () => {
    const s = await c.status(n1);
    const leader = [n1, n2, n3].find((n) => n.name === s.nodes.find((x) => x.leader)!.name)!;
    const others = [n1, n2, n3].filter((n) => n !== leader);
    const t0 = Date.now();
    await c.kill(leader);
    await DaemonCluster.retry(async () => {
      const cl = c.client(others[0]!);
      try {
        await cl.call(UserService, "createUser", { username: "op2", password: "operator-password-2", role: Role.AUDITOR });
      } catch (err) {
        if (err instanceof ApiError && err.code === "already_exists") return;
        throw err;
      } finally {
        cl.close();
      }
    }, 30_000);
    console.log(`mutation accepted ${Date.now() - t0} ms after kill -9 of the leader ${leader.name}`);
    c.serve(leader);
    await DaemonCluster.retry(async () => {
      const r = c.client(leader, { linearizable: true });
      try {
        const users = await r.call(UserService, "listUsers", {});
        if (!users.users.some((u) => u.username === "op2")) throw new Error("op2 not there yet");
      } finally {
        r.close();
      }
    }, 30_000);
  });

  it("refuses a used token, an expired token and a token of another cluster, with clear errors", async () => {
    const token = await c.token(n1);
    const n4 = await c.allocate("n4");
    expect(c.join(n4, token).code).toBe(0);
    const again = await c.allocate("n5");
    const used = c.join(again, token);
    expect(used.code).not.toBe(0);
    expect(used.stderr).toMatch(/already used|token_used/i);

    const short = await c.token(n1, 1);
    await new Promise((r) => setTimeout(r, 1500));
    const n6 = await c.allocate("n6");
    const expired = c.join(n6, short);
    expect(expired.code).not.toBe(0);
    expect(expired.stderr).toMatch(/expired/i);

    const foreign = createJoinToken({ caFingerprint: "ab".repeat(32), addresses: [n1.api], ttlMs: 60_000, nowMs: Date.now(), random: cryptoRandom }).token;
    const n7 = await c.allocate("n7");
    const other = c.join(n7, foreign);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/fingerprint/i);
  });

  it("drives the cluster from the CLI: status as JSON, errors with exit codes, remove a node", async () => {
    const caFile = `${n1.dataDir}/tls/ca.crt`;
    const flags = ["--server", n2.api, "--token", c.adminToken, "--ca-file", caFile];
    const st = cli(["cluster", "status", "--output", "json", ...flags]);
    expect(st.code, st.stderr).toBe(0);
    const status = JSON.parse(st.stdout) as { nodes: Array<{ name: string; role: string }> };
    expect(status.nodes.map((n) => n.name)).toEqual(expect.arrayContaining(["n1", "n2", "n3", "n4"]));
    const table = cli(["cluster", "status", ...flags]);
    expect(table.stdout).toMatch(/NAME\s+ADDRESS\s+ROLE/);
    const badToken = cli(["cluster", "status", "--server", n2.api, "--token", "trv_0000000000000000_bad", "--ca-file", caFile]);
    expect(badToken.code).not.toBe(0);
    expect(badToken.stderr).toMatch(/unauthenticated|token/i);
    const unknown = cli(["cluster", "remove", "nope", ...flags]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/not a member/);
    // n4 joined in the token test but never ran: remove it.
    const removed = cli(["cluster", "remove", "n4", ...flags]);
    expect(removed.code, removed.stderr).toBe(0);
    const after = JSON.parse(cli(["cluster", "status", "--output", "json", "--linearizable", ...flags]).stdout) as { nodes: Array<{ name: string }> };
    expect(after.nodes.map((n) => n.name).sort()).toEqual(["n1", "n2", "n3"]);
    await c.waitForVoters(n1, 3);

    // People and credentials from the CLI; every mutation lands in the audit log.
    fs.writeFileSync(`${c.dir}/aud-password`, "auditor-password-9\n");
    const created = cli(["user", "create", "aud1", "--role", "auditor", "--password-file", `${c.dir}/aud-password`, ...flags]);
    expect(created.code, created.stderr).toBe(0);
    const users = JSON.parse(cli(["user", "list", "--output", "json", "--linearizable", ...flags]).stdout) as { users: Array<{ username: string }> };
    expect(users.users.map((u) => u.username)).toContain("aud1");
    const badRole = cli(["user", "create", "x", "--role", "root", "--password-file", `${c.dir}/aud-password`, ...flags]);
    expect(badRole.code).toBe(2);
    const secret = cli(["token", "create", "ci", ...flags]).stdout.trim();
    expect(secret).toMatch(/^trv_/);
    const tokens = JSON.parse(cli(["token", "list", "--output", "json", ...flags]).stdout) as { tokens: Array<{ id: string; name: string }> };
    const ci = tokens.tokens.find((t) => t.name === "ci")!;
    expect(cli(["token", "revoke", ci.id, ...flags]).code).toBe(0);
    expect(cli(["cluster", "status", "--server", n2.api, "--token", secret, "--ca-file", caFile]).code).not.toBe(0);
    const audit = cli(["audit", "list", "--limit", "20", ...flags]).stdout;
    expect(audit).toMatch(/user\/aud1/);
  });

  it("refuses a peer connection without a cluster certificate", async () => {
    const [host, port] = n2.peer.split(":");
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = tls.connect({ host, port: Number(port), ca: c.caPem, ALPNProtocols: ["h2"] }, () => {
        // TLS 1.3 reports a missing client certificate after the handshake: wait for the alert.
        s.once("data", () => resolve(undefined));
        setTimeout(() => resolve(undefined), 3000);
      });
      s.once("error", resolve);
    });
    expect(err?.message ?? "accepted").toMatch(/certificate required|alert/i);
  });
});
