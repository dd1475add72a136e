// `trivet host install-service [--print] [--data-dir DIR] [--binary PATH]`: the systemd unit of
// the node daemon for production installs, written to /etc/systemd/system/trivet.service (or
// printed). KillMode=process is the point: the guests' QEMU processes are started by the daemon
// and so live in the unit's cgroup; with the default (control-group) systemd would kill every
// guest on `systemctl stop/restart trivet`. With it, only the daemon is signalled, the guests run
// on, and the restarted daemon re-attaches to them (core/host/agent.ts).
import fs from "node:fs";
import path from "node:path";
import { UsageError, type Command } from "./commands.ts";
import { dataDirDefault } from "./cluster.ts";
import { selfCommand } from "./demo.ts";
import { parseFlags } from "./flags.ts";

export const unitPathDefault = "/etc/systemd/system/trivet.service";

export interface UnitOptions {
  /** The daemon's command line up to its sub-command: the trivet binary, or node and its script. */
  command: string[];
  dataDir: string;
}

/** One ExecStart word: % and $ doubled (systemd specifiers and variables), quoted when it holds anything but plain path characters. */
export function systemdWord(word: string): string {
  if (word === "" || [...word].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) throw new UsageError(`${JSON.stringify(word)} cannot be written into a systemd unit (empty, or holds control characters)`);
  const escaped = word.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  return /^[A-Za-z0-9_@%+=:,./$-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The unit text (pure). */
export function systemdUnit(o: UnitOptions): string {
  if (!path.isAbsolute(o.dataDir)) throw new UsageError(`--data-dir must be an absolute path (got ${JSON.stringify(o.dataDir)})`);
  const exec = [...o.command, "serve", "--data-dir", o.dataDir].map(systemdWord).join(" ");
  return `# Written by \`trivet host install-service\`.
[Unit]
Description=Trivet node daemon (cluster member, API, host agent)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=${exec}
Restart=on-failure
RestartSec=2s
# Guests' QEMU processes live in this unit's cgroup: stop and restart signal only the daemon, so
# they keep running and the next daemon re-attaches to them.
KillMode=process
TimeoutStopSec=30s
LimitNOFILE=1048576
LimitMEMLOCK=infinity

[Install]
WantedBy=multi-user.target
`;
}

/** Replaces the file whole (write then rename), so that systemd never reads half a unit. */
function writeUnit(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

export const hostInstallServiceCommand: Command = {
  path: ["host", "install-service"],
  summary: "write the systemd unit of the node daemon (KillMode=process: restarts never kill guests)",
  usage: `[--print] [--data-dir DIR] [--binary PATH] [--unit-file ${unitPathDefault}]`,
  async run(ctx) {
    const { flags, positional } = parseFlags(ctx.argv, {
      print: { type: "boolean" }, "data-dir": { type: "string", default: dataDirDefault }, binary: { type: "string" }, "unit-file": { type: "string", default: unitPathDefault },
    });
    if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
    const [cmd, args] = selfCommand([]);
    const command = flags.binary !== undefined ? [path.resolve(flags.binary)] : [cmd, ...args];
    const text = systemdUnit({ command, dataDir: path.resolve(flags["data-dir"]) });
    if (flags.print) {
      ctx.stdout.write(text);
      return 0;
    }
    try {
      writeUnit(flags["unit-file"], text);
    } catch (err) {
      throw new Error(`writing the systemd unit ${flags["unit-file"]}: ${(err as Error).message} (run as root, or use --print)`, { cause: err });
    }
    ctx.stdout.write(`wrote ${flags["unit-file"]}\nstart it with: systemctl daemon-reload && systemctl enable --now ${path.basename(flags["unit-file"])}\n`);
    return 0;
  },
};
