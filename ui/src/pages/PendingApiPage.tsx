// Pages whose API does not exist yet (VMs: issue 5, storage: issue 6) say so plainly instead of
// showing invented rows; and the page for an unknown path.
import { EmptyState, EmptyStateBody, PageSection, Title } from "@patternfly/react-core";
import CubesIcon from "@patternfly/react-icons/dist/esm/icons/cubes-icon.js";

export function PendingApiPage({ title, api, issue }: { title: string; api: string; issue: number }) {
  return (
    <>
      <PageSection><Title headingLevel="h1">{title}</Title></PageSection>
      <PageSection>
        <EmptyState titleText={`${title}: not available yet`} headingLevel="h2" icon={CubesIcon}>
          <EmptyStateBody>
            This page fills in when the cluster offers {api} (issue {issue}). Nothing is shown until then.
          </EmptyStateBody>
        </EmptyState>
      </PageSection>
    </>
  );
}

export function NotFoundPage({ path }: { path: string }) {
  return (
    <PageSection>
      <EmptyState titleText="No such page" headingLevel="h1">
        <EmptyStateBody>There is no page at {path}, or your role does not let you see it.</EmptyStateBody>
      </EmptyState>
    </PageSection>
  );
}
