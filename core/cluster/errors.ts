// Typed errors of the cluster's PKI, join tokens, sealed secrets and TLS set-up: a stable code
// for callers (the API maps them to statuses) and a message that says what was being done.

export type ClusterErrorCode =
  | "invalid_argument"
  | "pem_invalid"
  | "csr_signature_invalid"
  | "csr_names_mismatch"
  | "ca_key_mismatch"
  | "token_format"
  | "token_expired"
  | "token_used"
  | "token_secret_mismatch"
  | "sealed_format"
  | "sealed_wrong_key"
  | "sealed_tampered"
  | "kek_invalid"
  | "kek_permissions"
  | "ca_fingerprint_mismatch"
  | "tls_connect"
  | "peer_listen"
  | "not_initialized"
  | "already_initialized"
  | "join_refused";

export class ClusterError extends Error {
  constructor(
    readonly code: ClusterErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ClusterError";
  }
}
