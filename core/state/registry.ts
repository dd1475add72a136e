// The state modules of this build, in one list. An area adds its module here (one import, one
// entry); its migrations take the versions reserved for it in migrations.ts.
import { authModule } from "../api/auth/auth-module.ts";
import { clusterModule } from "../cluster/cluster-module.ts";
import { nodeModule } from "../cluster/node-module.ts";
import { vmModule } from "../vm/vm-module.ts";
import { storageModule } from "../../storage/volume/storage-module.ts";
import { ModuleRegistry, type StateModule } from "./modules.ts";

export const stateModules: StateModule[] = [clusterModule, authModule, nodeModule, vmModule, storageModule];

export const registry = new ModuleRegistry(stateModules);
