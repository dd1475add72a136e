// The receive queue: message boundaries do not line up with socket chunks.
import { describe, expect, it } from "vitest";
import { ByteQueue } from "./byte-queue.ts";

describe("ByteQueue", () => {
  it("returns bytes in order across chunk boundaries", () => {
    const q = new ByteQueue();
    q.push(Buffer.from("abc"));
    q.push(Buffer.from(""));
    q.push(Buffer.from("defgh"));
    expect(q.length).toBe(8);
    expect(q.take(2).toString()).toBe("ab");
    expect(q.take(4).toString()).toBe("cdef");
    expect(q.length).toBe(2);
    q.push(Buffer.from("ij"));
    expect(q.take(4).toString()).toBe("ghij");
    expect(q.length).toBe(0);
  });

  it("hands out a view, not a copy, when the bytes lie in one chunk", () => {
    const q = new ByteQueue();
    const chunk = Buffer.from("0123456789");
    q.push(chunk);
    const view = q.take(4);
    chunk[0] = 0x41;
    expect(view.toString()).toBe("A123");
  });

  it("refuses to take more than is queued", () => {
    const q = new ByteQueue();
    q.push(Buffer.from("ab"));
    expect(() => q.take(3)).toThrow(RangeError);
    expect(q.take(2).toString()).toBe("ab");
  });
});
