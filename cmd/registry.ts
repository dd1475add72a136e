// Every sub-command of `trivet`, in one list. Areas define their commands in their own files.
import type { Command } from "./commands.ts";
import { buildInfo } from "./version.ts";
import { selftestCommand } from "./selftest.ts";
import { hostCheckCommand } from "./host.ts";
import { hostInstallServiceCommand } from "./host-service.ts";
import { raftServeCommand } from "./raft.ts";
import { demoCommand } from "./demo.ts";
import { userCommands } from "./users.ts";
import { vmConsoleCommand } from "./console.ts";
import { vmCommands } from "./vm.ts";
import { volumeCommands } from "./volume.ts";
import { imageCommands } from "./image.ts";
import { clusterRemoveCommand, clusterStatusCommand, clusterTokenCommand, initCommand, joinCommand, loginCommand, serveCommand } from "./cluster.ts";

const versionCommand: Command = {
  path: ["version"],
  summary: "print the version of this build",
  async run(ctx) {
    const info = buildInfo();
    ctx.stdout.write(`trivet ${info.version} (commit ${info.commit}${info.builtAt ? `, built ${info.builtAt}` : ""}, node ${process.version})\n`);
    return 0;
  },
};

export const commands: Command[] = [versionCommand, selftestCommand, hostCheckCommand, hostInstallServiceCommand, raftServeCommand,
  serveCommand, initCommand, joinCommand, loginCommand, clusterStatusCommand, clusterTokenCommand, clusterRemoveCommand, demoCommand, ...userCommands, ...vmCommands, vmConsoleCommand, ...volumeCommands, ...imageCommands];
