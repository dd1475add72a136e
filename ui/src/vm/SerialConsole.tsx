// A VM's serial console in xterm.js over the console WebSocket (binary frames both ways; the
// session cookie authenticates, the CSRF token rides as a subprotocol). The socket must be
// opened on the node the VM runs on: on another node the page says which node to use instead
// of trying (the server would refuse with 412).
import { Alert, Button, Label, Split, SplitItem } from "@patternfly/react-core";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import "./serial-console.css";
import { useEffect, useRef, useState } from "react";
import type { Vm } from "../api/types.ts";
import { usePolled } from "../app/poll.ts";
import { useSession } from "../app/session.ts";
import { serialConsoleUrl } from "./vm-state.ts";

type Phase = "connecting" | "open" | "closed";

function useSerialSocket(vmName: string, term: Terminal | undefined, csrf: string | null, attempt: number) {
  const [phase, setPhase] = useState<Phase>("connecting");
  useEffect(() => {
    if (!term) return;
    setPhase("connecting");
    const ws = new WebSocket(serialConsoleUrl(window.location, vmName), ["binary", `trivet-csrf.${csrf ?? ""}`]);
    ws.binaryType = "arraybuffer";
    const encoder = new TextEncoder();
    ws.onopen = () => { setPhase("open"); term.focus(); };
    ws.onmessage = (ev) => { if (ev.data instanceof ArrayBuffer) term.write(new Uint8Array(ev.data)); };
    ws.onclose = () => setPhase("closed");
    const input = term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(d)); });
    return () => { input.dispose(); ws.onclose = null; ws.close(); };
  }, [vmName, term, csrf, attempt]);
  return phase;
}

function Terminal80x25({ vm }: { vm: Vm }) {
  const { client } = useSession();
  const box = useRef<HTMLDivElement>(null);
  const [term, setTerm] = useState<Terminal>();
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!box.current) return;
    const t = new Terminal({ cols: 100, rows: 30, fontSize: 14, scrollback: 2000, theme: { background: "#000000", foreground: "#f0f0f0", cursor: "#f0f0f0" } });
    t.open(box.current);
    setTerm(t);
    return () => t.dispose();
  }, []);
  const phase = useSerialSocket(vm.name, term, client.csrfToken, attempt);
  const label = phase === "open" ? <Label color="green">connected</Label> : phase === "connecting" ? <Label color="blue">connecting</Label> : <Label color="grey">disconnected</Label>;
  return (
    <>
      <Split hasGutter className="pf-v6-u-mb-sm">
        <SplitItem data-testid="console-phase">{label}</SplitItem>
        <SplitItem isFilled>Serial console of {vm.name} on {vm.nodeName}. Press Enter if nothing shows.</SplitItem>
        <SplitItem><Button variant="secondary" size="sm" isDisabled={phase !== "closed"} onClick={() => setAttempt((a) => a + 1)}>Reconnect</Button></SplitItem>
      </Split>
      {phase === "closed" && <Alert variant="warning" isInline isPlain title="The console is closed: the VM may be stopped, or the node refused the connection." />}
      <div ref={box} data-testid="serial-console" className="trivet-serial pf-v6-u-p-xs" />
    </>
  );
}

export function SerialConsole({ vm }: { vm: Vm }) {
  const { client } = useSession();
  const status = usePolled(() => client.call("ClusterService/GetStatus", {}), 0);
  if (!status.data) return null;
  if (status.data.nodeName !== vm.nodeName) {
    const node = status.data.nodes.find((n) => n.name === vm.nodeName);
    const host = node?.address.replace(/:\d+$/, "");
    return (
      <Alert variant="info" isInline title={`The console of ${vm.name} opens on node ${vm.nodeName ?? "?"}, where it runs`}>
        This page is served by node {status.data.nodeName}. Open the web console on {vm.nodeName}
        {host ? ` (host ${host}, same HTTPS port as this page)` : ""} and come back to this VM.
      </Alert>
    );
  }
  return <Terminal80x25 vm={vm} />;
}
