// One VM: its lifecycle buttons and tabs for the overview, hardware, NICs, status, the serial
// console and the graphics console (noVNC, loaded on demand). Live from the event stream, so a
// state change made anywhere (CLI, another browser) shows.
import {
  Alert, Breadcrumb, BreadcrumbItem, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm,
  PageSection, Spinner, Tab, Tabs, TabTitleText, Title,
} from "@patternfly/react-core";
import { lazy, Suspense, useState, type ReactNode } from "react";
import type { Vm } from "../api/types.ts";
import { formatTime } from "../app/format.ts";
import { fallbackRefreshMs, usePolled } from "../app/poll.ts";
import { navigate } from "../app/router.ts";
import { useSession } from "../app/session.ts";
import { SerialConsole } from "./SerialConsole.tsx";
import { VmActions } from "./VmActions.tsx";
import { VmStateLabel } from "./VmStateLabel.tsx";
import { vmState } from "./vm-state.ts";

/** noVNC is loaded only when someone opens the graphics console (a chunk of its own). */
const VncConsole = lazy(() => import("./VncConsole.tsx"));

function Facts({ rows, label }: { rows: [string, ReactNode][]; label: string }) {
  return (
    <DescriptionList isHorizontal aria-label={label}>
      {rows.map(([t, d]) => (
        <DescriptionListGroup key={t}><DescriptionListTerm>{t}</DescriptionListTerm><DescriptionListDescription>{d}</DescriptionListDescription></DescriptionListGroup>
      ))}
    </DescriptionList>
  );
}

const time = (ms: string | undefined) => formatTime(Number(ms ?? 0));
const desiredLabel = (v: Vm) => (v.desiredState ?? "VM_DESIRED_STATE_UNSPECIFIED").replace("VM_DESIRED_STATE_", "").toLowerCase();

/** The console tabs only for those who may open them: an Auditor's console would be refused (vm.console). */
function VmTabs({ vm, withConsole }: { vm: Vm; withConsole: boolean }) {
  const [tab, setTab] = useState<string | number>("overview");
  const s = vm.status ?? {};
  return (
    <Tabs activeKey={tab} onSelect={(_e, k) => setTab(k)} aria-label="Virtual machine" mountOnEnter unmountOnExit>
      <Tab eventKey="overview" title={<TabTitleText>Overview</TabTitleText>}>
        <PageSection><Facts label="Overview" rows={[
          ["Name", vm.name], ["State", <VmStateLabel key="s" state={vmState(vm)} />], ["Desired state", desiredLabel(vm)],
          ["Node", <span key="n" data-testid="vm-node">{vm.nodeName ?? ""}</span>], ["Created", time(vm.createdAtMs)], ["ID", vm.id],
        ]} /></PageSection>
      </Tab>
      <Tab eventKey="hardware" title={<TabTitleText>Hardware</TabTitleText>}>
        <PageSection><Facts label="Hardware" rows={[
          ["vCPUs", String(vm.vcpus ?? 0)], ["Memory", `${vm.memoryMib ?? 0} MiB`], ["Machine type", vm.machineType ?? ""],
        ]} /></PageSection>
      </Tab>
      <Tab eventKey="nics" title={<TabTitleText>Network interfaces</TabTitleText>}>
        <PageSection>
          {(vm.nics ?? []).length === 0 ? "No network interface." : (
            <Facts label="Network interfaces" rows={(vm.nics ?? []).map((n, i): [string, ReactNode] => [`NIC ${i}`, n.mac ?? ""])} />
          )}
        </PageSection>
      </Tab>
      <Tab eventKey="status" title={<TabTitleText>Status</TabTitleText>}>
        <PageSection><Facts label="Status" rows={[
          ["Reported state", s.state || "no report yet"], ["QEMU process", s.pid && s.pid !== "0" ? s.pid : "none"],
          ["Started", time(s.startedAtMs)], ["Reported", time(s.reportedAtMs)], ["Error", s.error || "none"],
        ]} /></PageSection>
      </Tab>
      {withConsole ? (
        <Tab eventKey="console" title={<TabTitleText>Serial console</TabTitleText>}>
          <PageSection><SerialConsole vm={vm} /></PageSection>
        </Tab>
      ) : null}
      {withConsole ? (
        <Tab eventKey="graphics" title={<TabTitleText>Graphics console</TabTitleText>}>
          <PageSection>
            <Suspense fallback={<Spinner size="lg" aria-label="Loading the graphics console" />}><VncConsole vm={vm} /></Suspense>
          </PageSection>
        </Tab>
      ) : null}
    </Tabs>
  );
}

export function VmDetailPage({ name }: { name: string }) {
  const { client, canOperate } = useSession();
  const got = usePolled(() => client.call("VmService/GetVm", { name }), fallbackRefreshMs, name, (e) => e.object === `vm/${name}`);
  const vm = got.data?.vm;
  return (
    <>
      <PageSection>
        <Breadcrumb>
          <BreadcrumbItem to="/vms" onClick={(e) => { e.preventDefault(); navigate("/vms"); }}>Virtual machines</BreadcrumbItem>
          <BreadcrumbItem isActive>{name}</BreadcrumbItem>
        </Breadcrumb>
        <Title headingLevel="h1">{name} {vm && <VmStateLabel state={vmState(vm)} />}</Title>
      </PageSection>
      <PageSection>
        {got.error && <Alert variant={got.error.code === "not_found" ? "danger" : "warning"} isInline title={got.error.message} />}
        {vm && canOperate && <VmActions vm={vm} onChanged={got.reload} onDeleted={() => navigate("/vms")} />}
        {vm && <VmTabs vm={vm} withConsole={canOperate} />}
      </PageSection>
    </>
  );
}
