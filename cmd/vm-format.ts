// How `trivet vm list/show` print a VM's live figures: CPU in percent of one host CPU, memory as
// QEMU's resident size over the guest's configured size, uptime. "?" marks figures of a running
// VM that are unknown (its node did not answer in time); "-" a VM that does not run.
import type { VmStatusInfo } from "../core/api/gen/trivet/v1/vm_pb.ts";

const mib = 1024 * 1024;

function runs(s: VmStatusInfo | undefined): boolean {
  return s?.state === "running" || s?.state === "paused";
}

/** "12.5%", "?" or "-". */
export function formatCpu(s: VmStatusInfo | undefined): string {
  if (!runs(s)) return "-";
  return s!.statsKnown ? `${s!.cpuPercent.toFixed(1)}%` : "?";
}

/** "181M/256M" (RSS / guest memory, MiB), "?" or "-". */
export function formatMemory(s: VmStatusInfo | undefined): string {
  if (!runs(s)) return "-";
  if (!s!.statsKnown) return "?";
  return `${Math.round(Number(s!.memoryRssBytes) / mib)}M/${Math.round(Number(s!.guestMemoryBytes) / mib)}M`;
}

/** "45s", "12m03s", "3h07m", "2d04h", "?" or "-". */
export function formatUptime(s: VmStatusInfo | undefined): string {
  if (!runs(s)) return "-";
  if (!s!.statsKnown) return "?";
  const sec = Math.floor(Number(s!.uptimeMs) / 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  if (sec < 60) return `${sec}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${two(sec % 60)}s`;
  if (sec < 86_400) return `${Math.floor(sec / 3600)}h${two(Math.floor(sec / 60) % 60)}m`;
  return `${Math.floor(sec / 86_400)}d${two(Math.floor(sec / 3600) % 24)}h`;
}
