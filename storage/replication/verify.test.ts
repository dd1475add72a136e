import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeTarget } from "./fake-target.ts";
import { verifyReplicas } from "./verify.ts";

const M = 1024 * 1024;

describe("verifyReplicas", () => {
  it("reports the chunks that differ, with each replica's digest", async () => {
    const size = 6 * M + 512;
    const [a, b, c] = ["a", "b", "c"].map((n) => new FakeTarget(n, size)) as [FakeTarget, FakeTarget, FakeTarget];
    a.bytes = randomBytes(size);
    b.bytes = Buffer.from(a.bytes);
    c.bytes = Buffer.from(a.bytes);
    expect((await verifyReplicas({ imageId: "i", sizeBytes: size, replicas: [a, b, c], windowChunks: 2 })).mismatches).toEqual([]);
    c.bytes[2 * M + 5] = c.bytes[2 * M + 5]! ^ 0xff;
    b.bytes[6 * M + 100] = b.bytes[6 * M + 100]! ^ 0xff;
    const report = await verifyReplicas({ imageId: "i", sizeBytes: size, replicas: [a, b, c], windowChunks: 2 });
    expect(report.checkedBytes).toBe(size);
    expect(report.mismatches.map((m) => [m.offset, m.length])).toEqual([[2 * M, M], [6 * M, 512]]);
    const d = report.mismatches[0]!.digests;
    expect(d.a).toBe(d.b);
    expect(d.c).not.toBe(d.a);
  });

  it("bounds the list and names the replica that failed", async () => {
    const size = 4 * M;
    const [a, b] = ["a", "b"].map((n) => new FakeTarget(n, size)) as [FakeTarget, FakeTarget];
    b.bytes.fill(1);
    const r = await verifyReplicas({ imageId: "i", sizeBytes: size, replicas: [a, b], mismatchesMax: 2 });
    expect(r.mismatches).toHaveLength(2);
    expect(r.truncated).toBe(true);
    b.failWith = "timeout";
    await expect(verifyReplicas({ imageId: "i", sizeBytes: size, replicas: [a, b] })).rejects.toThrow(/node b/);
  });
});
