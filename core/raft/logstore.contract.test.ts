// Runs the shared LogStore contract against every implementation: SQLite-backed (with reopen)
// and the in-memory store the core's tests and the simulator use.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { runLogStoreContract } from "./logstore.contract.ts";
import { MemoryStorage } from "./memory-storage.ts";
import { SqliteLogStore } from "./sqlite-storage.ts";
import type { LogStore } from "./types.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-logstore-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const dirs = new Map<LogStore, string>();

runLogStoreContract(
  "SqliteLogStore",
  () => {
    const dir = fs.mkdtempSync(path.join(root, "s-"));
    const store = SqliteLogStore.open(dir);
    dirs.set(store, dir);
    return store;
  },
  {
    reopen: (store) => {
      const dir = dirs.get(store);
      if (!dir || !(store instanceof SqliteLogStore)) throw new Error("reopen: store was not made by this factory");
      store.close();
      const again = SqliteLogStore.open(dir);
      dirs.set(again, dir);
      return again;
    },
  },
);

runLogStoreContract("MemoryStorage", () => new MemoryStorage());
