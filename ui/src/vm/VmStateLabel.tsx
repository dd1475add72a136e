// A VM's run state as a coloured label.
import { Label } from "@patternfly/react-core";
import { stateColor } from "./vm-state.ts";

export function VmStateLabel({ state }: { state: string }) {
  return <Label color={stateColor(state)} isCompact data-testid="vm-state">{state}</Label>;
}
