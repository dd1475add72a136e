import { describe } from "vitest";
import { GrpcTransport } from "./grpc-transport.ts";
import { MemoryHub } from "./memory-transport.ts";
import { transportContract } from "./transport.contract.ts";

describe("memory transport", () => {
  const hub = new MemoryHub();
  transportContract({ make: async (id) => ({ transport: hub.transport(id), address: String(id) }) });
});

describe("gRPC transport", () => {
  transportContract({
    make: async (id) => {
      const transport = new GrpcTransport({ id, listen: "127.0.0.1:0" });
      // The port is known only after start; the fixture starts it, so bind lazily via a proxy address.
      const start = transport.start.bind(transport);
      let address = "";
      transport.start = async (h) => {
        await start(h);
        address = `127.0.0.1:${transport.port}`;
      };
      return { transport, get address() { return address; } };
    },
  });
});
