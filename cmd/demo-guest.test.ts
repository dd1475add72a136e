// The demo guest's build front end: what build.sh's output gives, and the Debian package named
// when a tool the build needs is missing (before anything runs).
import { describe, expect, it } from "vitest";
import { DemoGuestError, ensureDemoGuest, missingPackages, parseBuildOutput } from "./demo-guest.ts";

const allTools = { busybox: true, cpio: true, gzip: true, kernelPackage: true };

describe("parseBuildOutput", () => {
  it("takes the kernel and initramfs from build.sh's last lines, after its log", () => {
    const out = "guest build: building /c/build-6.1\nTRIVET_GUEST_KERNEL=/c/build-6.1/vmlinuz\nTRIVET_GUEST_INITRD=/c/build-6.1/initrd.gz\n";
    expect(parseBuildOutput(out)).toEqual({ kernel: "/c/build-6.1/vmlinuz", initrd: "/c/build-6.1/initrd.gz" });
  });

  it("gives nothing when either path is missing", () => {
    expect(parseBuildOutput("TRIVET_GUEST_KERNEL=/k\n")).toBeUndefined();
    expect(parseBuildOutput("guest build: error: /bin/busybox missing: install busybox-static\n")).toBeUndefined();
  });
});

describe("missing packages", () => {
  it("names the Debian package of each missing tool", () => {
    expect(missingPackages(allTools)).toEqual([]);
    expect(missingPackages({ ...allTools, busybox: false, cpio: false })).toEqual(["busybox-static", "cpio"]);
    // The kernel can still be fetched with apt-get download: not missing for sure.
    expect(missingPackages({ ...allTools, kernelPackage: false })).toEqual([]);
  });

  it("refuses to build without busybox, naming busybox-static and install-deps.sh", async () => {
    const err = await ensureDemoGuest("/nonexistent/demo-guest", { tools: { ...allTools, busybox: false } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DemoGuestError);
    expect((err as DemoGuestError).code).toBe("guest_missing_package");
    expect((err as Error).message).toBe("building the demo guest: install the Debian package busybox-static (bash cmd/install-deps.sh installs everything the demo needs)");
  });
});
