// The first administrator of a new cluster, created by `trivet init` (and by the demo): the
// password is checked and hashed here, on the node that received it, and only its hash is
// proposed. The command refuses when the cluster already has users, so a second init cannot
// take over an existing cluster.
import type { Replica } from "../../state/replica.ts";
import { checkResult } from "../server/errors.ts";
import { check, lengthBetween, usernameRule } from "../server/validation.ts";
import { appendAudit } from "./audit.ts";
import { newUserId, type RandomBytes } from "./credentials.ts";
import { defaultArgon2Params, hashPassword, passwordMaxChars, passwordMinChars, type Argon2Params } from "./passwords.ts";

export interface BootstrapOptions {
  argon2?: Argon2Params;
  randomBytes?: RandomBytes;
}

/** Creates the first administrator; throws ApiError (invalid_argument naming the field, or failed_precondition when users exist). */
export async function bootstrapAdmin(replica: Replica, username: string, password: string, opts: BootstrapOptions = {}): Promise<{ userId: string }> {
  check("username", username, usernameRule);
  check("password", password, lengthBetween(passwordMinChars, passwordMaxChars));
  const passwordHash = await hashPassword(password, opts.argon2 ?? defaultArgon2Params, opts.randomBytes);
  const id = newUserId(opts.randomBytes);
  const payload = { id, username, role: "administrator", passwordHash, onlyIfNoUsers: true };
  checkResult(await replica.execute({ type: "ext", name: "user.create", payload }), `creating the first administrator "${username}"`);
  await appendAudit(replica, { principal: "-", action: "trivet.init", object: `user/${username}`, result: "ok", detail: { role: "administrator" } });
  return { userId: id };
}
