// A VM's serial console: the shared xterm.js terminal over /api/v1/console/serial/<vm>, opened
// on the node the VM runs on (elsewhere the page says which node to use).
import { OnNode } from "../console/OnNode.tsx";
import { TerminalConsole } from "../console/TerminalConsole.tsx";
import type { Vm } from "../api/types.ts";
import { serialConsoleUrl } from "./vm-state.ts";

export function SerialConsole({ vm }: { vm: Vm }) {
  return (
    <OnNode node={vm.nodeName ?? ""} what={`The console of ${vm.name}`}>
      <TerminalConsole url={serialConsoleUrl(window.location, vm.name)} testId="serial-console"
        caption={`Serial console of ${vm.name} on ${vm.nodeName ?? "?"}. Press Enter if nothing shows.`}
        closedHint="the VM may be stopped, or the node refused the connection." />
    </OnNode>
  );
}
