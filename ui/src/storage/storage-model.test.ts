// What the storage pages print: sizes, use of a volume and of the cluster, replica health with
// heal progress, and the size and name an uploaded file gets.
import { describe, expect, it } from "vitest";
import type { Brick, Image, ImageReplica, Volume } from "../api/types.ts";
import { brickUse, clusterUse, usedByNode, formatBytes, imageNameFor, imageSizeFor, isHealing, parseSize, replicaHealth, replicasText, usedPercent } from "./storage-model.ts";

const brick = (nodeName: string, used: number, capacity: number, reportedAtMs = 1): Brick => ({
  nodeId: "1", nodeName, path: "", usedBytes: String(used), capacityBytes: String(capacity), reportedAtMs: String(reportedAtMs),
});
const volume = (name: string, bricks: Brick[]): Volume => ({ id: name, name, replicaCount: bricks.length, createdAtMs: "0", bricks, imageCount: 0 });
const replica = (nodeName: string, inSync: boolean, done = 0, total = 0): ImageReplica => ({
  nodeId: "1", nodeName, inSync, fullHeal: false, healDoneBytes: String(done), healTotalBytes: String(total), reason: inSync ? "" : "timeout",
});
const image = (replicas: ImageReplica[]): Image => ({
  id: "i", name: "disk1", volume: "v", volumeId: "v", kind: "disk", format: "raw", sizeBytes: "1048576", state: "ready",
  generation: "1", writerEpoch: "0", writerNodeId: "0", writerNodeName: "", writerClean: true, createdAtMs: "0", replicas,
});

describe("storage model", () => {
  it("formats bytes in binary units", () => {
    expect([0, 512, 1536, 1048576, 20 * 1024 ** 3, 1.5 * 1024 ** 4].map(formatBytes)).toEqual(["0 B", "512 B", "1.5 KiB", "1 MiB", "20 GiB", "1.5 TiB"]);
    expect(formatBytes(123.4 * 1024 ** 2)).toBe("123 MiB");
  });

  it("sums a volume's use over the bricks that reported", () => {
    const u = brickUse([brick("n1", 100, 1000), brick("n2", 300, 1000), brick("n3", 999, 999, 0)]);
    expect(u).toEqual({ usedBytes: 400, capacityBytes: 2000, reported: 2, bricks: 3 });
    expect(usedPercent(u)).toBe(20);
    expect(usedPercent(brickUse([]))).toBe(0);
  });

  it("says when a volume has an arbiter", () => {
    expect(replicasText(volume("v", [brick("n1", 0, 1), brick("n2", 0, 1)]))).toBe("2");
    expect(replicasText({ ...volume("v", [brick("n1", 0, 1), brick("n2", 0, 1)]), arbiter: true })).toBe("2 + arbiter");
    expect(replicasText({ ...volume("v", [brick("n1", 0, 1), brick("n2", 0, 1), brick("n3", 0, 1)]), arbiter: false })).toBe("3");
  });

  it("counts each node's file system once for the cluster", () => {
    // Volumes a and b share n1's file system; c has its brick on another one of n1.
    const vols = [volume("a", [brick("n1", 10, 1000), brick("n2", 20, 1000)]), volume("b", [brick("n1", 12, 1000), brick("n3", 5, 500, 0)]), volume("c", [brick("n1", 7, 300)])];
    expect(clusterUse(vols)).toEqual({ usedBytes: 39, capacityBytes: 2300, reported: 4, bricks: 5 });
    expect(usedByNode(vols)).toEqual({ n1: 19, n2: 20 });
  });

  it("reads replica health and heal progress", () => {
    expect(replicaHealth(image([replica("n1", true), replica("n2", true), replica("n3", true)]))).toEqual({ text: "3/3 in sync", tone: "green" });
    expect(replicaHealth(image([replica("n1", true), replica("n2", true), replica("n3", false, 45, 100)]))).toEqual({ text: "2/3 — healing 45%", tone: "orange" });
    expect(replicaHealth(image([replica("n1", true), replica("n2", false), replica("n3", false)]))).toEqual({ text: "1/3 in sync", tone: "red" });
    expect(replicaHealth(image([]))).toEqual({ text: "no replica", tone: "grey" });
    expect(isHealing([image([replica("n1", true), replica("n2", false, 1, 10)])])).toBe(true);
    expect(isHealing([image([replica("n1", true), replica("n2", false)])])).toBe(false);
  });

  it("sizes and names an uploaded file", () => {
    expect([0, 1, 512, 513, 2 * 1024 * 1024].map(imageSizeFor)).toEqual([512, 512, 512, 1024, 2 * 1024 * 1024]);
    expect(imageNameFor("Debian 12.7 NetInst.ISO")).toBe("debian-12.7-netinst.iso");
    expect(imageNameFor("C:\\isos\\_Alpine_.iso")).toBe("alpine_.iso");
    expect(imageNameFor("!!!")).toBe("");
    expect(imageNameFor(`${"a".repeat(200)}.iso`)).toHaveLength(128);
  });

  it("parses typed sizes", () => {
    expect(["1024", "10G", "10 GiB", "1.5m", "512 MB", "x", "", "-1G"].map(parseSize)).toEqual([1024, 10 * 1024 ** 3, 10 * 1024 ** 3, 1.5 * 1024 ** 2, 512 * 1024 ** 2, undefined, undefined, undefined]);
  });
});
