// Sizes on the command line: binary suffixes, fractions that come to whole bytes, refusals that
// name the flag, and the table form.
import { describe, expect, it } from "vitest";
import { formatBytes, parseSize } from "./sizes.ts";

describe("sizes", () => {
  it.each([
    ["4096", 4096n], ["512M", 512n * 1024n ** 2n], ["10G", 10n * 1024n ** 3n], ["1T", 1024n ** 4n], ["1.5G", 3n * 512n * 1024n ** 2n],
    ["10g", 10n * 1024n ** 3n], ["10GiB", 10n * 1024n ** 3n], ["10 GB", 10n * 1024n ** 3n], ["2K", 2048n], ["1P", 1024n ** 5n],
  ])("parses %s", (text, bytes) => {
    expect(parseSize("size", text)).toBe(bytes);
  });

  it.each(["", "G", "-1G", "10X", "1.0000000001K", "1e9", "ten"])("refuses %j naming the flag", (text) => {
    expect(() => parseSize("size", text)).toThrow(/--size/);
  });

  it("prints sizes in the largest binary unit", () => {
    expect(formatBytes(0n)).toBe("0 B");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(10n * 1024n ** 3n)).toBe("10 GiB");
    expect(formatBytes(3n * 512n * 1024n ** 2n)).toBe("1.5 GiB");
    expect(formatBytes(1024 ** 4)).toBe("1 TiB");
  });
});
