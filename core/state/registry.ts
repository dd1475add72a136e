// The state modules of this build, in one list. An area adds its module here (one import, one
// entry); its migrations take the versions reserved for it in migrations.ts.
import { ModuleRegistry, type StateModule } from "./modules.ts";

export const stateModules: StateModule[] = [];

export const registry = new ModuleRegistry(stateModules);
