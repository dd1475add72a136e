// The scripted test environment behind core/raft/testdata/*.txt (after etcd's interaction
// tests): a few RaftNodes over MemoryStorage, per-node mailboxes the script delivers or drops,
// partitions, ticks, and a trivial state machine (the list of applied payloads). Every command
// returns the text the scripts compare against, so the scripts read as protocol transcripts.

import { RaftNode } from "./node.ts";
import { MemoryStorage } from "./memory-storage.ts";
import { decodeConfChange, describeConfChange } from "./confchange.ts";
import { describeConfState, describeEntry, describeMessage, describeReady } from "./describe.ts";
import { ConfChangeType, EntryType, MessageType, RaftError, type ConfChange, type Message, type NodeId, type RaftConfig, type Ready } from "./types.ts";

/** Rounds of "handle every Ready, deliver every message" before stabilize gives up. */
const maxStabilizeRounds = 200;

interface EnvNode {
  node: RaftNode;
  storage: MemoryStorage;
  config: RaftConfig;
  /** The state machine: payloads of applied normal entries, in order. */
  applied: string[];
}

export interface Command {
  name: string;
  /** Positional arguments. */
  args: string[];
  /** key=value arguments; "(1,2,3)" lists stay as written. */
  kv: Map<string, string>;
}

export function parseCommand(line: string): Command {
  const parts = line.trim().split(/\s+/);
  const cmd: Command = { name: parts[0] ?? "", args: [], kv: new Map() };
  for (const p of parts.slice(1)) {
    const eq = p.indexOf("=");
    if (eq > 0) cmd.kv.set(p.slice(0, eq), p.slice(eq + 1));
    else cmd.args.push(p);
  }
  return cmd;
}

function parseIdList(s: string | undefined): NodeId[] {
  if (!s) return [];
  return s.replace(/[()]/g, "").split(",").filter((x) => x !== "").map(Number);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class InteractionEnv {
  readonly nodes = new Map<NodeId, EnvNode>();
  private mailbox = new Map<NodeId, Message[]>();
  /** Nodes cut off from all others (messages across the cut are dropped when sent). */
  private isolated = new Set<NodeId>();

  handle(cmd: Command): string[] {
    const id = Number(cmd.args[0]);
    switch (cmd.name) {
      case "add-nodes": return this.addNodes(cmd);
      case "campaign": return this.call(() => this.get(id).node.campaign());
      case "propose": return this.call(() => this.get(id).node.propose(enc.encode(cmd.args[1] ?? "")));
      case "propose-batch": return this.call(() => this.get(id).node.proposeBatch(cmd.args.slice(1).map((s) => enc.encode(s))));
      case "propose-conf-change": return this.call(() => this.get(id).node.proposeConfChange(parseConfChange(cmd.args[1] ?? "")));
      case "transfer-leadership": return this.call(() => this.get(id).node.transferLeadership(Number(cmd.args[1])));
      case "read-index": return this.call(() => this.get(id).node.readIndex(enc.encode(cmd.args[1] ?? "")));
      case "report-unreachable": return this.call(() => this.get(id).node.reportUnreachable(Number(cmd.args[1])));
      case "tick-election": return this.tick(id, this.get(id).config.electionTick);
      case "tick-heartbeat": return this.tick(id, this.get(id).config.heartbeatTick);
      case "tick": return this.tick(id, Number(cmd.args[1] ?? 1));
      case "process-ready": return cmd.args.flatMap((a) => this.processReady(Number(a)));
      case "deliver-msgs": return cmd.args.flatMap((a) => this.deliver(Number(a), cmd.kv.get("type")));
      case "drop-msgs": return this.dropMsgs(cmd);
      case "stabilize": {
        const out = this.stabilize(cmd.args.length > 0 ? cmd.args.map(Number) : [...this.nodes.keys()]);
        // quiet=true: for setup steps whose transcript another scenario already checks.
        return cmd.kv.get("quiet") === "true" ? ["ok"] : out;
      }
      case "partition": for (const a of cmd.args) this.isolated.add(Number(a)); return ["ok"];
      case "heal": this.isolated.clear(); return ["ok"];
      case "compact": return this.compact(id, Number(cmd.args[1]));
      case "restart": return this.restart(id);
      case "status": return this.status(id);
      case "log": return this.logOf(id);
      case "applied": return [`${id}: [${this.get(id).applied.join(" ")}]`];
      default: throw new Error(`unknown command ${cmd.name}`);
    }
  }

  private get(id: NodeId): EnvNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private call(fn: () => void): string[] {
    try {
      fn();
      return ["ok"];
    } catch (err) {
      if (err instanceof RaftError) return [`error ${err.code}: ${err.message}`];
      throw err;
    }
  }

  private addNodes(cmd: Command): string[] {
    const n = Number(cmd.args[0]);
    const voters = parseIdList(cmd.kv.get("voters"));
    const learners = parseIdList(cmd.kv.get("learners"));
    const num = (k: string, d: number) => (cmd.kv.has(k) ? Number(cmd.kv.get(k)) : d);
    // election-jitter=(a,b,..): node i's random source always returns the i-th value, so its
    // randomized election timeout is electionTick + value (default 0 for all).
    const jitter = parseIdList(cmd.kv.get("election-jitter"));
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.nodes.size + 1;
      const offset = jitter[i] ?? 0;
      const storage = new MemoryStorage();
      if (voters.length > 0) {
        RaftNode.bootstrap(storage, voters);
        if (learners.length > 0) {
          const snap = storage.snapshot();
          storage.applySnapshot({ ...snap, metadata: { ...snap.metadata, confState: { voters, learners } } });
        }
      }
      const config: RaftConfig = {
        id, electionTick: num("election", 10), heartbeatTick: num("heartbeat", 1), storage, applied: 0,
        maxSizePerMsgBytes: num("max-msg-bytes", 1 << 20), maxInflightMsgs: num("max-inflight", 256),
        maxUncommittedEntriesBytes: num("max-uncommitted-bytes", 1 << 30), maxCommittedSizePerReadyBytes: num("max-committed-bytes", 1 << 30),
        checkQuorum: cmd.kv.get("checkquorum") === "true", preVote: cmd.kv.get("prevote") === "true",
        rand: { intn: (k: number) => Math.min(offset, k - 1) },
      };
      this.nodes.set(id, { node: new RaftNode(config), storage, config, applied: [] });
      this.mailbox.set(id, []);
      out.push(`${id}: ${describeConfState(storage.initialState().confState)} first=${storage.firstIndex()} last=${storage.lastIndex()}`);
    }
    return out;
  }

  private tick(id: NodeId, n: number): string[] {
    for (let i = 0; i < n; i++) this.get(id).node.tick();
    return ["ok"];
  }

  /** Persist, send, apply, advance: the driver's loop for one Ready, printed. */
  private processReady(id: NodeId): string[] {
    const n = this.get(id);
    if (!n.node.hasReady()) return [];
    const rd = n.node.ready();
    const out = [`> ${id} handling Ready`, ...describeReady(rd).map((l) => "  " + l)];
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries, rd.mustSync);
    if (rd.hardState) n.storage.setHardState(rd.hardState, rd.mustSync);
    for (const m of rd.messages) {
      if (this.isolated.has(m.from) !== this.isolated.has(m.to)) {
        out.push(`  dropped (partition): ${describeMessage(m)}`);
        continue;
      }
      this.mailbox.get(m.to)?.push(m);
    }
    out.push(...this.apply(id, n, rd));
    n.node.advance(rd);
    return out;
  }

  private apply(id: NodeId, n: EnvNode, rd: Ready): string[] {
    const out: string[] = [];
    if (rd.snapshot) {
      const text = dec.decode(rd.snapshot.data);
      n.applied = text === "" ? [] : text.split(",");
    }
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        const cs = n.node.applyConfChange(cc);
        out.push(`  ${id} applied ${describeConfChange(cc)}: ${describeConfState(cs)}`);
      } else if (e.data.length > 0) {
        n.applied.push(dec.decode(e.data));
      }
    }
    return out;
  }

  private deliver(id: NodeId, type: string | undefined): string[] {
    const box = this.mailbox.get(id) ?? [];
    const take = type ? box.filter((m) => "Msg" + MessageType[m.type] === type) : box;
    if (take.length === 0) return [];
    this.mailbox.set(id, type ? box.filter((m) => !take.includes(m)) : []);
    const out = [`> ${id} receiving messages`];
    for (const m of take) {
      out.push("  " + describeMessage(m));
      try {
        this.get(id).node.step(m);
      } catch (err) {
        if (!(err instanceof RaftError)) throw err;
        out.push(`  error ${err.code}: ${err.message}`);
      }
    }
    return out;
  }

  private dropMsgs(cmd: Command): string[] {
    const to = cmd.kv.has("to") ? Number(cmd.kv.get("to")) : undefined;
    const from = cmd.kv.has("from") ? Number(cmd.kv.get("from")) : undefined;
    const out: string[] = [];
    for (const [id, box] of this.mailbox) {
      const keep: Message[] = [];
      for (const m of box) {
        if ((to === undefined || to === id) && (from === undefined || from === m.from)) out.push(`dropped: ${describeMessage(m)}`);
        else keep.push(m);
      }
      this.mailbox.set(id, keep);
    }
    return out.length > 0 ? out : ["ok"];
  }

  private stabilize(ids: NodeId[]): string[] {
    const out: string[] = [];
    for (let round = 0; round < maxStabilizeRounds; round++) {
      let progressed = false;
      for (const id of ids) {
        if (this.get(id).node.hasReady()) {
          out.push(...this.processReady(id));
          progressed = true;
        }
      }
      for (const id of ids) {
        const box = this.mailbox.get(id) ?? [];
        if (box.length > 0) {
          out.push(...this.deliver(id, undefined));
          progressed = true;
        }
      }
      if (!progressed) return out.length > 0 ? out : ["ok"];
    }
    throw new Error(`stabilize: not quiet after ${maxStabilizeRounds} rounds`);
  }

  /** Takes a snapshot of node `id`'s state machine at `index` and compacts its log up to it. */
  private compact(id: NodeId, index: number): string[] {
    const n = this.get(id);
    const st = n.node.status();
    if (index > st.applied) throw new Error(`compact ${id} ${index}: only applied up to ${st.applied}`);
    n.storage.createSnapshot(index, st.confState, enc.encode(n.applied.join(",")));
    n.storage.compact(index);
    return [`${id}: first=${n.storage.firstIndex()} last=${n.storage.lastIndex()}`];
  }

  /** Crash and restart: volatile state is lost, storage survives, the state machine is rebuilt by re-applying. */
  private restart(id: NodeId): string[] {
    const n = this.get(id);
    const snap = n.storage.snapshot();
    const text = dec.decode(snap.data);
    n.applied = text === "" ? [] : text.split(",");
    // The rebuilt state machine is at the snapshot: everything after it is applied again.
    n.config = { ...n.config, applied: 0 };
    n.node = new RaftNode(n.config);
    this.mailbox.set(id, []);
    return this.status(id);
  }

  private status(id: NodeId): string[] {
    const n = this.get(id);
    const s = n.node.status();
    const out = [`${id}: ${s.role} term=${s.term} vote=${s.vote} lead=${s.leader} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} ${describeConfState(s.confState)}`];
    for (const line of n.node.describeProgress()) out.push("  " + line);
    return out;
  }

  private logOf(id: NodeId): string[] {
    const st = this.get(id).storage;
    const first = st.firstIndex();
    const last = st.lastIndex();
    const out = [`${id}: stable log ${first}..${last} (snapshot ${st.snapshot().metadata.term}/${st.snapshot().metadata.index})`];
    if (last >= first) for (const e of st.entries(first, last + 1, Infinity)) out.push("  " + describeEntry(e));
    return out;
  }
}

function parseConfChange(s: string): ConfChange {
  const kind = s[0];
  const nodeId = Number(s.slice(1));
  const type = kind === "v" ? ConfChangeType.AddVoter : kind === "l" ? ConfChangeType.AddLearner : kind === "r" ? ConfChangeType.RemoveNode : undefined;
  if (type === undefined || !(nodeId > 0)) throw new Error(`bad conf change ${s}: want v<id>, l<id> or r<id>`);
  return { type, nodeId };
}
