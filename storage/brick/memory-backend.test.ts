// Runs the shared BlockBackend contract against the in-memory backend.
import { describeBlockBackendContract } from "../nbd/backend-contract.ts";
import { MemoryBackend } from "./memory-backend.ts";

describeBlockBackendContract("memory", (sizeBytes) => Promise.resolve({ backend: new MemoryBackend(sizeBytes), dispose: () => Promise.resolve() }));
