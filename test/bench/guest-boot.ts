// Benchmark: time from spawning QEMU (TCG) to the test guest's ready marker, over several boots.
// Prints one line per run, then a summary; the last line is JSON for CI to collect.
import { bootGuest, ensureGuest, guestReadyMarker } from "../guest/guest.ts";

const runsCount = 5;
const bootTimeoutMs = 60_000;

function median(sorted: number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function bootOnce(): Promise<number> {
  const guest = await bootGuest({});
  try {
    await guest.waitForLine(new RegExp(`^${guestReadyMarker}$`), bootTimeoutMs);
    return Math.round(performance.now() - guest.spawnedAtMs);
  } finally {
    await guest.dispose();
  }
}

async function main(): Promise<void> {
  await ensureGuest();
  const runs: number[] = [];
  for (let i = 0; i < runsCount; i++) {
    const ms = await bootOnce();
    runs.push(ms);
    process.stdout.write(`run ${i + 1}/${runsCount}: ${ms} ms from spawn to ${guestReadyMarker}\n`);
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const medianMs = median(sorted);
  process.stdout.write(`guest boot (TCG): median ${medianMs} ms, min ${sorted[0]} ms, max ${sorted[sorted.length - 1]} ms\n`);
  process.stdout.write(`${JSON.stringify({ bench: "guest_boot", accel: "tcg", median_ms: medianMs, min_ms: sorted[0], max_ms: sorted[sorted.length - 1], runs })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench guest_boot: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
