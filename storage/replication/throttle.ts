// Paces a byte stream to bytesPerSec with an injected clock and sleep: after each piece, waits
// until the total so far would have taken that long at the rate. 0 means unthrottled.
export interface Pacing {
  nowMs(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export class Throttle {
  private startMs: number | null = null;
  private bytes = 0;

  constructor(
    private readonly bytesPerSec: number,
    private readonly pacing: Pacing,
  ) {}

  async consume(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.bytesPerSec <= 0) return;
    this.startMs ??= this.pacing.nowMs();
    this.bytes += bytes;
    const dueMs = this.startMs + (this.bytes / this.bytesPerSec) * 1000;
    const waitMs = dueMs - this.pacing.nowMs();
    if (waitMs > 0) await this.pacing.sleep(waitMs, signal);
  }
}

/** Real time: a sleep that ends early (rejecting) when the signal aborts. */
export const realPacing: Pacing = {
  nowMs: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) return reject(signal.reason as Error);
      const onAbort = (): void => {
        clearTimeout(t);
        reject(signal?.reason as Error);
      };
      const t = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};
