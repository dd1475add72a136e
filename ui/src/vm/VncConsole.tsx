// A VM's graphics console: noVNC over /api/v1/console/vnc/<vm> (a byte proxy to QEMU's VNC
// server). Loaded lazily (noVNC is about 55 KiB gzipped) only when the tab is opened. A VM that
// is not running has no display to show; a running VM without a graphics display (QEMU started
// without `display: vnc`) is refused by the node, which is said plainly.
import { Alert, Button, Label, Split, SplitItem } from "@patternfly/react-core";
import RFB from "@novnc/novnc";
import { useEffect, useRef, useState, type RefObject } from "react";
import type { Vm } from "../api/types.ts";
import { useSession } from "../app/session.ts";
import { OnNode } from "../console/OnNode.tsx";
import { consoleProtocols, consoleUrl } from "../console/urls.ts";
import { vmState } from "./vm-state.ts";

type Phase = { kind: "connecting" } | { kind: "open"; desktop: string } | { kind: "closed"; clean: boolean; why?: string };

function useRfb(box: RefObject<HTMLDivElement | null>, vmName: string, csrf: string | null, attempt: number) {
  const [phase, setPhase] = useState<Phase>({ kind: "connecting" });
  const [rfb, setRfb] = useState<RFB>();
  useEffect(() => {
    if (!box.current) return;
    setPhase({ kind: "connecting" });
    const r = new RFB(box.current, consoleUrl(window.location, "vnc", vmName), { shared: true, wsProtocols: consoleProtocols(csrf) });
    r.scaleViewport = true;
    r.background = "#000000";
    let desktop = "";
    r.addEventListener("connect", () => setPhase({ kind: "open", desktop }));
    r.addEventListener("desktopname", (e) => { desktop = (e as CustomEvent<{ name: string }>).detail.name; setPhase((p) => (p.kind === "open" ? { kind: "open", desktop } : p)); });
    r.addEventListener("disconnect", (e) => setPhase({ kind: "closed", clean: (e as CustomEvent<{ clean: boolean }>).detail.clean }));
    r.addEventListener("securityfailure", (e) => setPhase({ kind: "closed", clean: false, why: (e as CustomEvent<{ reason?: string }>).detail.reason ?? "security negotiation failed" }));
    r.addEventListener("credentialsrequired", () => { r.disconnect(); setPhase({ kind: "closed", clean: false, why: "the display asks for a password, which Trivet does not set" }); });
    setRfb(r);
    return () => { r.disconnect(); setRfb(undefined); };
  }, [box, vmName, csrf, attempt]);
  return { phase, rfb };
}

function closedMessage(p: Extract<Phase, { kind: "closed" }>): string {
  if (p.why) return `The graphics console is closed: ${p.why}.`;
  if (p.clean) return "The graphics console is closed: the VM stopped or the display went away.";
  return "No graphics display could be opened: the VM has no graphics display (it runs with the serial console only), or the node refused the connection.";
}

function Screen({ vm }: { vm: Vm }) {
  const { client } = useSession();
  const box = useRef<HTMLDivElement>(null);
  const [attempt, setAttempt] = useState(0);
  const { phase, rfb } = useRfb(box, vm.name, client.csrfToken, attempt);
  const label = phase.kind === "open" ? <Label color="green">connected</Label> : phase.kind === "connecting" ? <Label color="blue">connecting</Label> : <Label color="grey">disconnected</Label>;
  return (
    <>
      <Split hasGutter className="pf-v6-u-mb-sm">
        <SplitItem data-testid="vnc-phase">{label}</SplitItem>
        <SplitItem isFilled>Graphics console of {vm.name} on {vm.nodeName}{phase.kind === "open" && phase.desktop ? ` (${phase.desktop})` : ""}. Click the screen to type into it.</SplitItem>
        <SplitItem><Button variant="secondary" size="sm" isDisabled={phase.kind !== "open"} onClick={() => rfb?.sendCtrlAltDel()}>Send Ctrl+Alt+Del</Button></SplitItem>
        <SplitItem><Button variant="secondary" size="sm" isDisabled={phase.kind !== "closed"} onClick={() => setAttempt((a) => a + 1)}>Reconnect</Button></SplitItem>
      </Split>
      {phase.kind === "closed" && <Alert variant="warning" isInline title={closedMessage(phase)} data-testid="vnc-closed" className="pf-v6-u-mb-sm" />}
      <div ref={box} data-testid="vnc-screen" className="trivet-vnc" hidden={phase.kind === "closed"} aria-label={`Graphics console of ${vm.name}`} role="application" />
    </>
  );
}

export default function VncConsole({ vm }: { vm: Vm }) {
  const state = vmState(vm);
  if (state !== "running" && state !== "paused") {
    return <Alert variant="info" isInline title={`${vm.name} is ${state}: the graphics console shows a running VM's display.`} data-testid="vnc-not-running">Start the VM, then open this tab again.</Alert>;
  }
  return <OnNode node={vm.nodeName ?? ""} what={`The graphics console of ${vm.name}`}><Screen vm={vm} /></OnNode>;
}
