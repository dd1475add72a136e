// Test support: stands in for the Trivet daemon in a process of its own. Reads a VM spec and host
// facts (JSON, argv[2]) and a run directory (argv[3]), starts the VM with the runtime, prints
// "STARTED <pid>" and then idles until it is killed — so a test can kill the "daemon" outright
// and check that the guest survives it.
import { readFile } from "node:fs/promises";
import { startVm } from "../../core/host/qemu/runtime.ts";
import type { QemuHostFacts, VmSpec } from "../../core/host/qemu/spec.ts";

const idleMs = 600_000;

const [specPath, runDir] = process.argv.slice(2);
if (!specPath || !runDir) throw new Error("usage: daemon-stand-in.ts SPEC.json RUN_DIR");
const { spec, facts } = JSON.parse(await readFile(specPath, "utf8")) as { spec: VmSpec; facts: QemuHostFacts };
const rt = await startVm(spec, facts, { runDir });
process.stdout.write(`STARTED ${rt.pid}\n`);
// Killed by the test long before this; the bound keeps an orphaned stand-in from lingering.
setTimeout(() => process.exit(0), idleMs);
