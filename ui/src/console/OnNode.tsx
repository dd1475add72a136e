// Consoles open only on the node that owns them (a VM's node, or the node of a shell): on any
// other node this says which node's web console to use instead of trying (the server would
// refuse with 412), and on the right node renders the console.
import { Alert } from "@patternfly/react-core";
import type { ReactNode } from "react";
import { usePolled } from "../app/poll.ts";
import { useSession } from "../app/session.ts";

interface Props {
  node: string;
  /** "The console of web1", "A shell on n2": what opens on `node`. */
  what: string;
  children: ReactNode;
}

export function OnNode({ node, what, children }: Props) {
  const { client } = useSession();
  const status = usePolled(() => client.call("ClusterService/GetStatus", {}), 0);
  if (!status.data) return null;
  if (status.data.nodeName === node) return <>{children}</>;
  const host = status.data.nodes.find((n) => n.name === node)?.address.replace(/:\d+$/, "");
  return (
    <Alert variant="info" isInline title={`${what} opens on node ${node || "?"}`}>
      This page is served by node {status.data.nodeName}. Open the web console on {node}
      {host ? ` (host ${host}, same HTTPS port as this page)` : ""} and come back here.
    </Alert>
  );
}
