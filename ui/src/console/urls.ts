// The console WebSocket URLs (core/api/console): a VM's serial or VNC console, or a node's login
// shell, always on the node serving this page (the server refuses any other node's console).
export type ConsoleKind = "serial" | "vnc" | "shell";

/** `wss://<this host>/api/v1/console/<kind>/<name>` (ws: when the page came over plain HTTP). */
export function consoleUrl(location: { protocol: string; host: string }, kind: ConsoleKind, name: string): string {
  const scheme = location.protocol === "http:" ? "ws:" : "wss:";
  return `${scheme}//${location.host}/api/v1/console/${kind}/${encodeURIComponent(name)}`;
}

/** The subprotocols a browser offers: the real one first, then the session's CSRF token (upgrade-auth.ts). */
export function consoleProtocols(csrfToken: string | null): string[] {
  return ["binary", `trivet-csrf.${csrfToken ?? ""}`];
}

/** The bridge's only control message (core/api/console/bridge.ts): the terminal's size, for a shell's pty. */
export function resizeMessage(cols: number, rows: number): string {
  return JSON.stringify({ type: "resize", cols, rows });
}
