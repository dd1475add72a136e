// Which events reload the storage pages, and how often a heal is followed.
import { describe, expect, it } from "vitest";
import type { ApiEvent } from "../api/events.ts";
import { fallbackRefreshMs } from "../app/poll.ts";
import { healPollMaxMs, healPollMs, isStorageEvent, pollEveryMs } from "./use-storage.ts";

const ev = (kind: string, action?: string): ApiEvent => ({ id: "1", kind, object: "", fields: action ? { action } : {}, timeMs: 0, message: "" });

describe("storage live updates", () => {
  it("reloads on storage events and on audited volume and image changes only", () => {
    expect(isStorageEvent(ev("storage.image.heal"))).toBe(true);
    expect(isStorageEvent(ev("audit", "ImageService.CreateImage"))).toBe(true);
    expect(isStorageEvent(ev("audit", "VolumeService.DeleteVolume"))).toBe(true);
    expect(isStorageEvent(ev("audit", "UserService.CreateUser"))).toBe(false);
    expect(isStorageEvent(ev("vm.state"))).toBe(false);
  });

  it("polls fast while a heal runs, for a bounded time", () => {
    expect(pollEveryMs(undefined, 1_000)).toBe(fallbackRefreshMs);
    expect(pollEveryMs(1_000, 1_000 + healPollMaxMs - 1)).toBe(healPollMs);
    expect(pollEveryMs(1_000, 1_000 + healPollMaxMs)).toBe(fallbackRefreshMs);
  });
});
