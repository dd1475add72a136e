// The console URLs and the messages the browser sends on them.
import { describe, expect, it } from "vitest";
import { consoleProtocols, consoleUrl, resizeMessage } from "./urls.ts";

describe("console URLs", () => {
  it("opens every kind of console on the serving node, escaping the name", () => {
    expect(consoleUrl({ protocol: "https:", host: "10.0.0.1:8006" }, "shell", "n 2")).toBe("wss://10.0.0.1:8006/api/v1/console/shell/n%202");
    expect(consoleUrl({ protocol: "http:", host: "h:80" }, "vnc", "web1")).toBe("ws://h:80/api/v1/console/vnc/web1");
  });

  it("offers the binary subprotocol first and the CSRF token after it", () => {
    expect(consoleProtocols("abc")).toEqual(["binary", "trivet-csrf.abc"]);
    expect(JSON.parse(resizeMessage(100, 30))).toEqual({ type: "resize", cols: 100, rows: 30 });
  });
});
