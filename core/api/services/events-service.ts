// EventService: the node's event stream (audit entries, node health, leader changes; later VM
// state and task progress), filtered by kind and object prefix, resumable by id.
import type { EventBus } from "../events/bus.ts";
import { permissions } from "../auth/rbac.ts";
import { EventService } from "../gen/trivet/v1/events_pb.ts";
import { defineService, type RegisteredService } from "../server/service.ts";
import { check, matches } from "../server/validation.ts";

const kindRule = matches(/^[a-z][a-z0-9_.]{0,63}$/, "must be an event kind such as node.health or vm.state");
const prefixRule = matches(/^[a-z0-9_/.-]{0,200}$/, "must be an object prefix such as vm/ or node/n2 (a-z, 0-9, _, /, ., -)");
export const watchKindsMax = 32;

export function eventService(bus: EventBus): RegisteredService {
  return defineService({
    descriptor: EventService,
    policy: { watch: { permission: permissions.eventsRead, mutation: false } },
    validate: {
      watch: (r) => {
        check("kinds", r.kinds.length, (n) => (n <= watchKindsMax ? undefined : `must list at most ${watchKindsMax} kinds`));
        r.kinds.forEach((k, i) => check(`kinds[${i}]`, k, kindRule));
        check("object_prefix", r.objectPrefix, prefixRule);
      },
    },
    handlers: {
      async *watch(req, ctx) {
        for await (const e of bus.watch({ kinds: req.kinds, objectPrefix: req.objectPrefix }, Number(req.afterId), ctx.signal)) {
          yield { id: BigInt(e.id), timeMs: BigInt(e.timeMs), kind: e.kind, object: e.object, message: e.message, fields: e.fields };
        }
      },
    },
  });
}
