// A terminal in xterm.js over a console WebSocket (binary frames both ways; the session cookie
// authenticates, the CSRF token rides as a subprotocol): a VM's serial console or a node's login
// shell. On open it sends the terminal's size (a shell's pty takes it; a serial port ignores it).
import { Alert, Button, Label, Split, SplitItem } from "@patternfly/react-core";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import "../vm/serial-console.css";
import { useEffect, useRef, useState } from "react";
import { useSession } from "../app/session.ts";
import { consoleProtocols, resizeMessage } from "./urls.ts";

type Phase = "connecting" | "open" | "closed";

export const terminalCols = 100;
export const terminalRows = 30;

function useConsoleSocket(url: string, term: Terminal | undefined, csrf: string | null, attempt: number) {
  const [phase, setPhase] = useState<Phase>("connecting");
  const [reason, setReason] = useState("");
  useEffect(() => {
    if (!term) return;
    setPhase("connecting");
    setReason("");
    const ws = new WebSocket(url, consoleProtocols(csrf));
    ws.binaryType = "arraybuffer";
    const encoder = new TextEncoder();
    ws.onopen = () => { setPhase("open"); ws.send(resizeMessage(term.cols, term.rows)); term.focus(); };
    ws.onmessage = (ev) => { if (ev.data instanceof ArrayBuffer) term.write(new Uint8Array(ev.data)); };
    ws.onclose = (ev) => { setPhase("closed"); setReason(ev.reason); };
    const input = term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(d)); });
    return () => { input.dispose(); ws.onclose = null; ws.close(); };
  }, [url, term, csrf, attempt]);
  return { phase, reason };
}

interface Props {
  url: string;
  /** One line above the terminal: what this console is. */
  caption: string;
  /** What a closed console most likely means here. */
  closedHint: string;
  testId: string;
}

export function TerminalConsole({ url, caption, closedHint, testId }: Props) {
  const { client } = useSession();
  const box = useRef<HTMLDivElement>(null);
  const [term, setTerm] = useState<Terminal>();
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!box.current) return;
    const t = new Terminal({ cols: terminalCols, rows: terminalRows, fontSize: 14, scrollback: 2000, theme: { background: "#000000", foreground: "#f0f0f0", cursor: "#f0f0f0" } });
    t.open(box.current);
    setTerm(t);
    return () => t.dispose();
  }, []);
  const { phase, reason } = useConsoleSocket(url, term, client.csrfToken, attempt);
  const label = phase === "open" ? <Label color="green">connected</Label> : phase === "connecting" ? <Label color="blue">connecting</Label> : <Label color="grey">disconnected</Label>;
  return (
    <>
      <Split hasGutter className="pf-v6-u-mb-sm">
        <SplitItem data-testid="console-phase">{label}</SplitItem>
        <SplitItem isFilled>{caption}</SplitItem>
        <SplitItem><Button variant="secondary" size="sm" isDisabled={phase !== "closed"} onClick={() => setAttempt((a) => a + 1)}>Reconnect</Button></SplitItem>
      </Split>
      {phase === "closed" && <Alert variant="warning" isInline isPlain title={`The console is closed${reason ? ` (${reason})` : ""}: ${closedHint}`} />}
      <div ref={box} data-testid={testId} className="trivet-serial pf-v6-u-p-xs" />
    </>
  );
}
