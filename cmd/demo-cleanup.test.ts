// The demo's clean-up of processes its daemons leave: /proc stat lines read right whatever the
// process name, the process tree walked below the daemons only, and a leftover ended only while
// its pid still names the process that was noted.
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { descendants, killLeftovers, parseStat, processTable } from "./demo-cleanup.ts";

const exitWaitMs = 5000;

describe("parseStat", () => {
  it("reads pid, ppid and start time past a name with spaces and parentheses", () => {
    const fields = (ppid: number, start: number) => `S ${ppid} 7 7 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 ${start} 1000 50`;
    expect(parseStat(`123 (qemu-system-x86) ${fields(45, 9876)}`)).toEqual({ pid: 123, ppid: 45, startTicks: 9876 });
    expect(parseStat(`77 (a (b) c) ${fields(1, 5)}`)).toEqual({ pid: 77, ppid: 1, startTicks: 5 });
    expect(parseStat("garbage")).toBeUndefined();
  });
});

describe("descendants", () => {
  it("finds children and grandchildren of the roots, nothing else", () => {
    const table = [
      { pid: 10, ppid: 1, startTicks: 1 }, { pid: 11, ppid: 10, startTicks: 2 }, { pid: 12, ppid: 11, startTicks: 3 },
      { pid: 20, ppid: 1, startTicks: 4 }, { pid: 21, ppid: 20, startTicks: 5 }, { pid: 30, ppid: 1, startTicks: 6 },
    ];
    expect(descendants([10, 20], table).map((e) => e.pid).sort()).toEqual([11, 12, 21]);
    expect(descendants([99], table)).toEqual([]);
  });
});

describe("killLeftovers", () => {
  it("ends a noted process that still runs, and spares a pid whose start time changed", async () => {
    const child = spawn("sleep", ["60"], { stdio: "ignore" });
    const exited = new Promise<string | null>((r) => child.once("exit", (_code, signal) => r(signal)));
    try {
      const me = processTable().find((e) => e.pid === child.pid)!;
      expect(me).toBeDefined();
      expect(descendants([process.pid], processTable()).map((e) => e.pid)).toContain(child.pid);
      expect(killLeftovers([{ ...me, startTicks: me.startTicks + 1 }])).toEqual([]);
      expect(child.exitCode).toBeNull();
      expect(killLeftovers([me])).toEqual([child.pid]);
      const signal = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), exitWaitMs))]);
      expect(signal).toBe("SIGKILL");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
