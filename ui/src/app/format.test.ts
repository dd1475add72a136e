// Durations and times as the tables show them.
import { describe, expect, it } from "vitest";
import { formatDurationMs, formatTime } from "./format.ts";

describe("formatting", () => {
  it("reads durations at a useful precision", () => {
    expect(formatDurationMs(420)).toBe("0.4 s");
    expect(formatDurationMs(12_400)).toBe("12 s");
    expect(formatDurationMs(5 * 60_000)).toBe("5 min");
    expect(formatDurationMs(125 * 60_000)).toBe("2 h 5 min");
    expect(formatDurationMs(-1)).toBe("unknown");
  });

  it("shows 0 as never and a time as local date and time", () => {
    expect(formatTime(0)).toBe("never");
    expect(formatTime(new Date(2026, 0, 2, 3, 4, 5).getTime())).toBe("2026-01-02 03:04:05");
  });
});
