// The proto3 JSON shapes of the API messages the UI uses (core/api/proto/trivet/v1/*.proto, as
// served by POST /api/v1/<Service>/<Method>): field names in lowerCamelCase, int64 as decimal
// strings, enums as their names. Written by hand so the bundle carries no protobuf runtime;
// keep in step with the proto files.

export type Role = "ROLE_UNSPECIFIED" | "ROLE_ADMINISTRATOR" | "ROLE_OPERATOR" | "ROLE_AUDITOR";
export type NodeRole = "NODE_ROLE_UNSPECIFIED" | "NODE_ROLE_VOTER" | "NODE_ROLE_LEARNER";
export type NodeHealth = "NODE_HEALTH_UNSPECIFIED" | "NODE_HEALTH_HEALTHY" | "NODE_HEALTH_DEGRADED" | "NODE_HEALTH_UNREACHABLE";
export type CredentialKind = "CREDENTIAL_KIND_UNSPECIFIED" | "CREDENTIAL_KIND_SESSION" | "CREDENTIAL_KIND_TOKEN";
/** int64 in proto3 JSON. */
export type Int64 = string;

export interface User {
  id: string;
  username: string;
  role: Role;
  disabled: boolean;
  createdAtMs: Int64;
  updatedAtMs: Int64;
}

export interface Grant {
  username: string;
  objectKind: string;
  objectId: string;
  role: Role;
}

export interface ClusterNode {
  id: Int64;
  name: string;
  address: string;
  role: NodeRole;
  leader: boolean;
  health: NodeHealth;
  heartbeatAtMs: Int64;
  /** -1: unknown. */
  lastContactMs: Int64;
  appliedIndex: Int64;
}

export interface AuditEntry {
  id: Int64;
  atMs: Int64;
  principal: string;
  action: string;
  object: string;
  result: string;
  detailJson: string;
}

export type VmDesiredState = "VM_DESIRED_STATE_UNSPECIFIED" | "VM_DESIRED_STATE_RUNNING" | "VM_DESIRED_STATE_STOPPED" | "VM_DESIRED_STATE_PAUSED";

export interface VmStatusInfo {
  /** running, paused, stopped, shutdown, crashed, starting, failed; "" (or absent) before any report. */
  state?: string;
  pid?: Int64;
  startedAtMs?: Int64;
  error?: string;
  reportedAtMs?: Int64;
}

/** A VM as VmService returns it (proto3 JSON omits default values: hence the optional fields). */
export interface Vm {
  id: string;
  name: string;
  nodeId?: Int64;
  nodeName?: string;
  desiredState?: VmDesiredState;
  vcpus?: number;
  memoryMib?: Int64;
  machineType?: string;
  nics?: { mac?: string }[];
  status?: VmStatusInfo;
  createdAtMs?: Int64;
}

export interface VmConfig {
  vcpus: number;
  memoryMib: Int64;
  disks?: { sizeMib: Int64; format?: string }[];
  nics?: { mac?: string }[];
  kernelBoot?: { kernelPath: string; initrdPath?: string; append?: string };
}

type VmAction = { req: { name: string }; res: { vm?: Vm } };

/** A volume's directory on one node, with what its storage agent last reported. */
export interface Brick {
  nodeId: Int64;
  nodeName: string;
  /** "" is the node's default, <data dir>/bricks/<volume>. */
  path: string;
  capacityBytes: Int64;
  usedBytes: Int64;
  /** 0: not reported yet. */
  reportedAtMs: Int64;
}

export interface Volume {
  id: string;
  name: string;
  replicaCount: number;
  createdAtMs: Int64;
  bricks: Brick[];
  imageCount: number;
  /** Replica 2 + arbiter (absent when false). */
  arbiter?: boolean;
}

export interface ImageReplica {
  nodeId: Int64;
  nodeName: string;
  inSync: boolean;
  fullHeal: boolean;
  healDoneBytes: Int64;
  healTotalBytes: Int64;
  reason: string;
}

export type ImageKind = "disk" | "iso" | "template";

export interface Image {
  id: string;
  name: string;
  volume: string;
  volumeId: string;
  kind: string;
  format: string;
  sizeBytes: Int64;
  /** "ready" or "uploading". */
  state: string;
  generation: Int64;
  writerEpoch: Int64;
  writerNodeId: Int64;
  writerNodeName: string;
  writerClean: boolean;
  createdAtMs: Int64;
  replicas: ImageReplica[];
}

export interface VerifyResult {
  chunkBytes: Int64;
  replicas: { nodeId: Int64; nodeName: string; ok: boolean; error: string }[];
  mismatches: { offset: Int64; nodeIds: Int64[] }[];
  consistent: boolean;
}

/** One image in a volume verify: "consistent", "differs", "unverified" or "skipped" (reason says why). */
export interface VolumeVerifyImage {
  name: string;
  result: string;
  reason: string;
  replicas: { nodeId: Int64; nodeName: string; ok: boolean; error: string }[];
  chunksCompared: Int64;
  mismatches: { offset: Int64; nodeIds: Int64[]; nodeNames: string[]; noMajority: boolean }[];
}

export interface VolumeVerifyResult {
  volume: string;
  chunkBytes: Int64;
  images: VolumeVerifyImage[];
  consistent: boolean;
}

interface ImageRef { volume: string; name: string }

/** Request and response of every method the UI calls, by "Service/Method". */
export interface Methods {
  "AuthService/Login": {
    req: { username: string; password: string; kind: CredentialKind };
    res: { sessionId: string; csrfToken: string; expiresAtMs: Int64; user?: User };
  };
  "AuthService/Logout": { req: Record<string, never>; res: Record<string, never> };
  "AuthService/WhoAmI": { req: Record<string, never>; res: { user?: User; grants: Grant[]; credential: CredentialKind } };
  "ClusterService/GetStatus": {
    req: Record<string, never>;
    res: { clusterName: string; nodeName: string; term: Int64; leaderId: Int64; commitIndex: Int64; appliedIndex: Int64; nodes: ClusterNode[]; caFingerprint: string };
  };
  "UserService/ListUsers": { req: Record<string, never>; res: { users: User[] } };
  "UserService/CreateUser": { req: { username: string; password: string; role: Role }; res: { user?: User } };
  "UserService/DeleteUser": { req: { username: string }; res: Record<string, never> };
  "AuditService/ListAuditEntries": { req: { pageSize?: number; beforeId?: Int64; principal?: string; actionPrefix?: string }; res: { entries: AuditEntry[]; nextBeforeId: Int64 } };
  "VmService/ListVms": { req: Record<string, never>; res: { vms?: Vm[] } };
  "VmService/GetVm": { req: { name: string }; res: { vm?: Vm } };
  "VmService/CreateVm": { req: { name: string; config: VmConfig; start?: boolean }; res: { vm?: Vm } };
  "VmService/StartVm": VmAction;
  "VmService/StopVm": VmAction;
  "VmService/ShutdownVm": VmAction;
  "VmService/PauseVm": VmAction;
  "VmService/ResumeVm": VmAction;
  "VmService/DeleteVm": { req: { name: string }; res: Record<string, never> };
  "VolumeService/CreateVolume": {
    req: { name: string; replicaCount?: number; arbiter?: boolean; brickPaths?: { nodeName: string; path: string }[] };
    res: { volume?: Volume };
  };
  "VolumeService/ListVolumes": { req: Record<string, never>; res: { volumes: Volume[] } };
  "VolumeService/GetVolume": { req: { name: string }; res: { volume?: Volume } };
  "VolumeService/DeleteVolume": { req: { name: string }; res: Record<string, never> };
  "VolumeService/VerifyVolume": { req: { name: string }; res: VolumeVerifyResult };
  "ImageService/CreateImage": {
    req: ImageRef & { sizeBytes: Int64; format?: string; kind?: ImageKind; upload?: boolean };
    res: { image?: Image };
  };
  "ImageService/ListImages": { req: { volume?: string }; res: { images: Image[] } };
  "ImageService/GetImage": { req: ImageRef; res: { image?: Image } };
  "ImageService/ResizeImage": { req: ImageRef & { sizeBytes: Int64 }; res: { image?: Image } };
  "ImageService/DeleteImage": { req: ImageRef; res: Record<string, never> };
  "ImageService/VerifyImage": { req: ImageRef; res: VerifyResult };
  /** data: the chunk in base64 (proto3 JSON bytes). */
  "ImageService/WriteImageContent": { req: ImageRef & { offset: Int64; data: string }; res: { nextOffset: Int64 } };
  "ImageService/FinishImageUpload": { req: ImageRef; res: { image?: Image } };
}

export type MethodName = keyof Methods;
