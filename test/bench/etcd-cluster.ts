// Starts a three-member etcd cluster on loopback for the Raft benchmark: free ports chosen at
// run time, data directories under one temporary directory, etcd's shipped defaults for
// heartbeat, election timeout and fsync (durability is the point of the comparison). Knows
// which member leads (Maintenance/Status) so the benchmark can kill -9 it.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync, createWriteStream } from "node:fs";
import type { WriteStream } from "node:fs";
import { freePort } from "../cluster/raft-processes.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EtcdClient } from "./etcd-client.ts";

export const etcdBinaryDefault = "/usr/bin/etcd";
/** A fresh 3.4 cluster elects in ~1-2 s; allow for a loaded 2-core machine. */
export const clusterReadyTimeoutMs = 30_000;
export const memberStopTimeoutMs = 5_000;
const pollIntervalMs = 100;
const memberCount = 3;

export class EtcdClusterError extends Error {
  readonly code: "ETCD_NOT_READY" | "ETCD_NO_LEADER" | "ETCD_MEMBER_UNKNOWN" | "ETCD_SPAWN_FAILED";
  constructor(code: EtcdClusterError["code"], message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "EtcdClusterError";
    this.code = code;
  }
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  process: ChildProcess | undefined;
}

export interface EtcdClusterOptions {
  etcdBinary?: string;
  /** Where member logs go; default: files in the cluster's temporary directory. */
  logDir?: string;
}

export class EtcdCluster {
  readonly endpoints: string[];
  private readonly members: Member[];
  private readonly baseDir: string;
  private readonly binary: string;
  private readonly logs: WriteStream[] = [];
  private readonly probe: EtcdClient;
  private readonly onExit = (): void => this.killAll();

  private constructor(members: Member[], baseDir: string, binary: string) {
    this.members = members;
    this.baseDir = baseDir;
    this.binary = binary;
    this.endpoints = members.map((m) => `127.0.0.1:${m.clientPort}`);
    this.probe = new EtcdClient({ endpoints: this.endpoints, channels: 1 });
  }

  /** Spawns all three members and waits until they agree on a leader. */
  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const baseDir = mkdtempSync(join(tmpdir(), "trivet-bench-etcd-"));
    const members: Member[] = [];
    for (let i = 0; i < memberCount; i++) {
      members.push({ name: `etcd${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: join(baseDir, `etcd${i}`), process: undefined });
    }
    const cluster = new EtcdCluster(members, baseDir, options.etcdBinary ?? etcdBinaryDefault);
    process.once("exit", cluster.onExit);
    const logDir = options.logDir ?? join(baseDir, "logs");
    mkdirSync(logDir, { recursive: true });
    try {
      for (const m of members) cluster.spawnMember(m, logDir);
      await cluster.waitForLeader(clusterReadyTimeoutMs);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private spawnMember(m: Member, logDir: string): void {
    const initialCluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(",");
    const args = [
      "--name", m.name,
      "--data-dir", m.dataDir,
      "--listen-client-urls", `http://127.0.0.1:${m.clientPort}`,
      "--advertise-client-urls", `http://127.0.0.1:${m.clientPort}`,
      "--listen-peer-urls", `http://127.0.0.1:${m.peerPort}`,
      "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peerPort}`,
      "--initial-cluster", initialCluster,
      "--initial-cluster-token", `trivet-bench-${this.baseDir.slice(-6)}`,
      // Ignored on restart: a member with a data directory rejoins from its own WAL.
      "--initial-cluster-state", "new",
      "--logger", "zap",
      "--log-outputs", "stderr",
      "--log-level", "warn",
    ];
    const log = createWriteStream(join(logDir, `${m.name}.log`), { flags: "a" });
    this.logs.push(log);
    const child = spawn(this.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.once("error", (err) => log.write(`spawn error: ${err.message}\n`));
    m.process = child;
  }

  /** Member name → client endpoint, for reports and for restart(). */
  memberNames(): string[] {
    return this.members.map((m) => m.name);
  }

  pids(): number[] {
    return this.members.flatMap((m) => (m.process?.pid !== undefined && m.process.exitCode === null && m.process.signalCode === null ? [m.process.pid] : []));
  }

  /** The member every live member names as leader, or undefined while there is none. */
  async leader(): Promise<Member | undefined> {
    const live = this.members.filter((m) => m.process && m.process.exitCode === null && m.process.signalCode === null);
    const answers = await Promise.allSettled(live.map((m) => this.probe.status(`127.0.0.1:${m.clientPort}`)));
    const ids = new Map<bigint, Member>();
    const votes = new Set<bigint>();
    answers.forEach((a, i) => {
      if (a.status !== "fulfilled") return;
      ids.set(a.value.header.memberId, live[i] as Member);
      votes.add(a.value.leader);
    });
    if (votes.size !== 1) return undefined;
    const [leaderId] = [...votes];
    return leaderId === undefined || leaderId === 0n ? undefined : ids.get(leaderId);
  }

  private async waitForLeader(timeoutMs: number): Promise<Member> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = await this.leader();
      if (l) return l;
      if (Date.now() > deadline) {
        throw new EtcdClusterError("ETCD_NOT_READY", `starting etcd cluster in ${this.baseDir}: no agreed leader after ${timeoutMs} ms (see logs/*.log there)`);
      }
      await sleep(pollIntervalMs);
    }
  }

  /** host:port of the current leader; waits (bounded) for one to be elected. */
  async leaderEndpoint(timeoutMs = clusterReadyTimeoutMs): Promise<string> {
    const l = await this.waitForLeader(timeoutMs);
    return `127.0.0.1:${l.clientPort}`;
  }

  /** kill -9 of the leader; resolves with its name as soon as the signal is sent. */
  async killLeader(timeoutMs = clusterReadyTimeoutMs): Promise<string> {
    const l = await this.waitForLeader(timeoutMs);
    l.process?.kill("SIGKILL");
    return l.name;
  }

  /** Starts a stopped or killed member again with its data directory and waits for a leader. */
  async restart(name: string): Promise<void> {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new EtcdClusterError("ETCD_MEMBER_UNKNOWN", `restarting etcd member ${name}: no such member (have ${this.memberNames().join(", ")})`);
    if (m.process && m.process.exitCode === null && m.process.signalCode === null) await this.stopMember(m);
    this.spawnMember(m, join(this.baseDir, "logs"));
    await this.waitForMember(m, clusterReadyTimeoutMs);
  }

  /** Until the member itself answers and names a leader: it has rejoined the cluster. */
  private async waitForMember(m: Member, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.probe.status(`127.0.0.1:${m.clientPort}`).catch(() => undefined);
      if (status && status.leader !== 0n) return;
      if (Date.now() > deadline) {
        throw new EtcdClusterError("ETCD_NOT_READY", `restarting etcd member ${m.name}: it did not rejoin a led cluster within ${timeoutMs} ms (see ${this.baseDir}/logs/${m.name}.log)`);
      }
      await sleep(pollIntervalMs);
    }
  }

  private async stopMember(m: Member): Promise<void> {
    const p = m.process;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    p.kill("SIGTERM");
    const timer = sleep(memberStopTimeoutMs).then(() => "timeout" as const);
    if ((await Promise.race([exited.then(() => "exited" as const), timer])) === "timeout") {
      p.kill("SIGKILL");
      await Promise.race([exited, sleep(memberStopTimeoutMs)]);
    }
  }

  /** Stops every member, closes logs, removes the data directories. */
  async stop(keepDir = false): Promise<void> {
    this.probe.close();
    await Promise.all(this.members.map((m) => this.stopMember(m)));
    process.removeListener("exit", this.onExit);
    for (const l of this.logs) l.end();
    if (!keepDir) rmSync(this.baseDir, { recursive: true, force: true });
  }

  /** Last resort on process exit: nothing asynchronous can run here. */
  private killAll(): void {
    for (const m of this.members) {
      if (m.process && m.process.exitCode === null && m.process.signalCode === null) m.process.kill("SIGKILL");
    }
    rmSync(this.baseDir, { recursive: true, force: true });
  }
}
