// Tests of the QMP wire layer: strict line parsing, bounded framing, and the handshake against
// the fake QMP server.
import { createServer } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FakeQmpServer } from "./fake-server.ts";
import { QmpLineDecoder, connectQmpWire, encodeQmpCommand, parseQmpLine, qmpLineBytesMax } from "./wire.ts";

describe("parseQmpLine", () => {
  it("classifies greeting, return, error and event", () => {
    expect(parseQmpLine('{"QMP":{"version":{"qemu":{"micro":22,"minor":2,"major":7},"package":""},"capabilities":["oob"]}}')).toEqual({
      kind: "greeting", version: { major: 7, minor: 2, micro: 22 }, capabilities: ["oob"],
    });
    expect(parseQmpLine('{"return":{"running":true},"id":"c1"}')).toEqual({ kind: "return", id: "c1", value: { running: true } });
    expect(parseQmpLine('{"error":{"class":"GenericError","desc":"no"},"id":"c2"}')).toEqual({ kind: "error", id: "c2", errorClass: "GenericError", desc: "no" });
    expect(parseQmpLine('{"event":"STOP","timestamp":{"seconds":2,"microseconds":5}}')).toEqual({ kind: "event", event: "STOP", data: {}, timestampUs: 2_000_005 });
  });

  it.each([
    ["not JSON", "hello qemu", /not JSON/],
    ["an array", "[1,2]", /not an object/],
    ["an unknown object", '{"foo":1}', /neither greeting, reply nor event/],
    ["a numeric id", '{"return":{},"id":7}', /non-string id/],
    ["an error without desc", '{"error":{"class":"GenericError"}}', /malformed QMP error/],
    ["an event without timestamp", '{"event":"STOP"}', /malformed QMP event/],
    ["a greeting without version", '{"QMP":{"capabilities":[]}}', /malformed QMP greeting/],
  ])("rejects %s", (_what, line, message) => {
    expect(() => parseQmpLine(line)).toThrow(expect.objectContaining({ code: "protocol", message: expect.stringMatching(message) }));
  });
});

describe("QmpLineDecoder", () => {
  it("reassembles lines split across chunks and skips blank lines", () => {
    const d = new QmpLineDecoder();
    expect(d.push(Buffer.from('{"a":'))).toEqual([]);
    expect(d.push(Buffer.from('1}\r\n\n{"b":2}\n{"c"'))).toEqual(['{"a":1}', '{"b":2}']);
    expect(d.push(Buffer.from(":3}\n"))).toEqual(['{"c":3}']);
  });

  it("refuses a line longer than the bound, even when it arrives in pieces", () => {
    const d = new QmpLineDecoder();
    const piece = Buffer.alloc(qmpLineBytesMax / 4, 0x61);
    for (let i = 0; i < 4; i++) d.push(piece);
    expect(() => d.push(Buffer.from("a"))).toThrow(expect.objectContaining({ code: "protocol" }));
  });
});

describe("encodeQmpCommand", () => {
  it("writes one JSON line with the id, and arguments only when given", () => {
    expect(encodeQmpCommand("stop", undefined, "c1")).toBe('{"execute":"stop","id":"c1"}\n');
    expect(encodeQmpCommand("device_del", { id: "net1" }, "c2")).toBe('{"execute":"device_del","arguments":{"id":"net1"},"id":"c2"}\n');
  });
});

describe("connectQmpWire", () => {
  let fake: FakeQmpServer | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it("reads the greeting and negotiates capabilities before resolving", async () => {
    fake = await FakeQmpServer.start();
    const wire = await connectQmpWire(fake.socketPath, 2000);
    expect(wire.greeting.version).toEqual({ major: 7, minor: 2, micro: 22 });
    wire.close();
  });

  it("fails with a connect error when nothing listens", async () => {
    await expect(connectQmpWire("/nonexistent/trivet/qmp.sock", 2000)).rejects.toMatchObject({ code: "connect" });
  });

  it("fails with a protocol error when the peer does not greet with QMP", async () => {
    fake = await FakeQmpServer.start(undefined, '{"return":{}}');
    await expect(connectQmpWire(fake.socketPath, 2000)).rejects.toMatchObject({ code: "protocol", message: expect.stringContaining("expected the QMP greeting") });
  });

  it("times out when the peer stays silent", async () => {
    const dir = await mkdtemp(join(tmpdir(), "trivet-silent-"));
    const path = join(dir, "s.sock");
    const server = createServer(() => {});
    await new Promise<void>((r) => server.listen(path, r));
    try {
      await expect(connectQmpWire(path, 200)).rejects.toMatchObject({ code: "timeout", message: expect.stringContaining("200 ms") });
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
