// The typed error of the replication layer. Its codes are what a caller branches on: a replica
// that answers "stale_epoch" means this writer has been fenced; "no_space" a full brick;
// "timeout" and "closed" an unreachable peer; "io" anything else the brick reported.
export type ReplicationErrorCode =
  | "closed"
  | "timeout"
  | "stale_epoch"
  | "no_space"
  | "io"
  | "protocol"
  | "invalid_argument"
  | "out_of_range"
  | "not_open"
  | "aborted";

export class ReplicationError extends Error {
  constructor(
    readonly code: ReplicationErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ReplicationError";
  }
}
