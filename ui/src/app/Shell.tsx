// The console's frame: masthead (cluster name, theme toggle, user menu), the sidebar with the
// pages this user's role may see, and the page of the current path.
import {
  Bullseye, Button, Dropdown, DropdownItem, DropdownList, Masthead, MastheadBrand, MastheadContent, MastheadLogo, MastheadMain,
  MastheadToggle, MenuToggle, Nav, NavExpandable, NavItem, NavList, Page, PageSidebar, PageSidebarBody, PageToggleButton,
  SkipToContent, Spinner, Toolbar, ToolbarContent, ToolbarGroup, ToolbarItem,
} from "@patternfly/react-core";
import BarsIcon from "@patternfly/react-icons/dist/esm/icons/bars-icon.js";
import MoonIcon from "@patternfly/react-icons/dist/esm/icons/moon-icon.js";
import SunIcon from "@patternfly/react-icons/dist/esm/icons/sun-icon.js";
import { lazy, Suspense, useEffect, useState, type MouseEvent, type ReactNode } from "react";
import { recordEvents } from "../api/event-log.ts";
import { AuditPage } from "../pages/AuditPage.tsx";
import { DashboardPage } from "../pages/DashboardPage.tsx";
import { EventsPage } from "../pages/EventsPage.tsx";
import { NodeDetailPage } from "../pages/NodeDetailPage.tsx";
import { NodesPage } from "../pages/NodesPage.tsx";
import { NotFoundPage } from "../pages/PendingApiPage.tsx";
import { UsersPage } from "../pages/UsersPage.tsx";
import { VmDetailPage } from "../vm/VmDetailPage.tsx";
import { VmsPage } from "../vm/VmsPage.tsx";
import { roleLabel } from "./format.ts";
import { usePolled } from "./poll.ts";
import { navigate, usePath } from "./router.ts";
import { useSession, type Session } from "./session.ts";
import { isDark, setDark } from "./theme.ts";

interface Route {
  path: string;
  title: string;
  group?: string;
  visible(s: Session): boolean;
  render(): ReactNode;
}

const always = () => true;

/** The storage pages are a chunk of their own, loaded on first visit (the VM list loads without them). */
const StorageRoutes = lazy(() => import("../storage/StoragePage.tsx"));

function StoragePages({ path }: { path: string }) {
  return (
    <Suspense fallback={<Bullseye><Spinner aria-label="Loading the storage pages" /></Bullseye>}>
      <StorageRoutes path={path} />
    </Suspense>
  );
}

/**
 * Every page, in sidebar order. Administrators manage users; Auditors see users and the audit
 * log read-only (audit.proto: readable by Administrators and Auditors); Operators see neither.
 */
export const routes: readonly Route[] = [
  { path: "/", title: "Dashboard", visible: always, render: () => <DashboardPage /> },
  { path: "/nodes", title: "Nodes", visible: always, render: () => <NodesPage /> },
  { path: "/vms", title: "Virtual machines", visible: always, render: () => <VmsPage /> },
  { path: "/storage", title: "Storage", visible: always, render: () => <StoragePages path="/storage" /> },
  { path: "/events", title: "Tasks and events", group: "Tasks & events", visible: always, render: () => <EventsPage /> },
  { path: "/audit", title: "Audit log", group: "Tasks & events", visible: (s) => s.isAdmin || s.user.role === "ROLE_AUDITOR", render: () => <AuditPage /> },
  { path: "/users", title: "Users", visible: (s) => s.isAdmin || s.user.role === "ROLE_AUDITOR", render: () => <UsersPage /> },
];

function NavLink({ route, current }: { route: Route; current: string }) {
  return (
    <NavItem itemId={route.path} isActive={current === route.path || current.startsWith(`${route.path}/`)} to={route.path}
      onClick={(e) => { e.preventDefault(); navigate(route.path); }}>
      {route.title}
    </NavItem>
  );
}

function Sidebar({ visible, current }: { visible: readonly Route[]; current: string }) {
  const items: ReactNode[] = [];
  const groups = new Set<string>();
  for (const r of visible) {
    if (!r.group) {
      items.push(<NavLink key={r.path} route={r} current={current} />);
    } else if (!groups.has(r.group)) {
      groups.add(r.group);
      const members = visible.filter((m) => m.group === r.group);
      items.push(
        <NavExpandable key={r.group} title={r.group} groupId={r.group} isExpanded isActive={members.some((m) => m.path === current)}>
          {members.map((m) => <NavLink key={m.path} route={m} current={current} />)}
        </NavExpandable>,
      );
    }
  }
  return <PageSidebar><PageSidebarBody><Nav aria-label="Console"><NavList>{items}</NavList></Nav></PageSidebarBody></PageSidebar>;
}

function UserMenu() {
  const s = useSession();
  const [open, setOpen] = useState(false);
  return (
    <Dropdown isOpen={open} onOpenChange={setOpen} popperProps={{ position: "right" }}
      toggle={(ref) => (
        <MenuToggle ref={ref} onClick={() => setOpen(!open)} isExpanded={open} aria-label={`User menu of ${s.user.username}`}>
          {s.user.username} ({roleLabel[s.user.role]})
        </MenuToggle>
      )}>
      <DropdownList>
        <DropdownItem key="logout" onClick={() => s.logout()}>Sign out</DropdownItem>
      </DropdownList>
    </Dropdown>
  );
}

function ThemeToggle() {
  const [dark, setDarkState] = useState(isDark());
  const label = dark ? "Switch to light theme" : "Switch to dark theme";
  return (
    <Button variant="plain" aria-label={label} title={label} icon={dark ? <SunIcon /> : <MoonIcon />}
      onClick={() => { setDark(!dark); setDarkState(!dark); }} />
  );
}

function Header() {
  const { client } = useSession();
  const status = usePolled(() => client.call("ClusterService/GetStatus", {}), 0);
  return (
    <Masthead>
      <MastheadMain>
        <MastheadToggle><PageToggleButton isHamburgerButton aria-label="Show or hide the navigation"><BarsIcon /></PageToggleButton></MastheadToggle>
        <MastheadBrand>
          <MastheadLogo component="a" href="/" onClick={(e: MouseEvent) => { e.preventDefault(); navigate("/"); }}>
            <span className="pf-v6-u-font-size-xl pf-v6-u-font-weight-bold">Trivet</span>
          </MastheadLogo>
        </MastheadBrand>
      </MastheadMain>
      <MastheadContent>
        <Toolbar isStatic>
          <ToolbarContent alignItems="center">
            <ToolbarItem alignItems="center"><span data-testid="cluster-name" className="pf-v6-u-font-weight-bold">{status.data ? `Cluster ${status.data.clusterName} · via ${status.data.nodeName}` : ""}</span></ToolbarItem>
            <ToolbarGroup align={{ default: "alignEnd" }}>
              <ToolbarItem><ThemeToggle /></ToolbarItem>
              <ToolbarItem><UserMenu /></ToolbarItem>
            </ToolbarGroup>
          </ToolbarContent>
        </Toolbar>
      </MastheadContent>
    </Masthead>
  );
}

export function Shell() {
  const session = useSession();
  const path = usePath();
  const visible = routes.filter((r) => r.visible(session));
  const route = visible.find((r) => r.path === path);
  // The event log records from sign-in on, whatever page is shown (dashboard, Tasks and events).
  useEffect(() => recordEvents(), []);
  return (
    <Page masthead={<Header />} sidebar={<Sidebar visible={visible} current={path} />} isManagedSidebar
      skipToContent={<SkipToContent href="#main-content">Skip to content</SkipToContent>} mainContainerId="main-content">
      {route ? route.render() : detailPage(path)}
    </Page>
  );
}

/** The detail pages: /vms/<name>, /nodes/<name> and the storage pages below /storage. */
function detailPage(path: string): ReactNode {
  if (path.startsWith("/storage/")) return <StoragePages path={path} />;
  const vmName = /^\/vms\/([^/]+)$/.exec(path)?.[1];
  if (vmName) return <VmDetailPage key={vmName} name={decodeURIComponent(vmName)} />;
  const nodeName = /^\/nodes\/([^/]+)$/.exec(path)?.[1];
  if (nodeName) return <NodeDetailPage key={nodeName} name={decodeURIComponent(nodeName)} />;
  return <NotFoundPage path={path} />;
}
