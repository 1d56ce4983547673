// Shared by the pipelines, deployments and monitoring views: their APIs are optional
// (a server may lack one), so each view asks the capabilities route first and says
// so plainly instead of failing a request.
import type { ReactNode } from "react";
import { getCapabilities } from "../api";
import { Empty, ErrorBox, Loading, useApi } from "../components/common";

export type Kind = "pipelines" | "deployments" | "monitors";

const TITLES: Record<Kind, string> = {
  pipelines: "Pipelines",
  deployments: "Deployments",
  monitors: "Monitoring",
};

/** Draws `children` when this server answers the `kind` API, else an honest empty state. */
export function WhenServed({ kind, children }: { kind: Kind; children: ReactNode }) {
  const served = useApi(
    async () => {
      const { apis } = await getCapabilities();
      return (apis[kind] ?? []).length > 0;
    },
    [kind],
  );
  if (served.error) return <ErrorBox error={served.error} />;
  if (served.data === undefined) return <Loading />;
  if (!served.data) {
    const title = TITLES[kind];
    return (
      <section>
        <h1>{title}</h1>
        <Empty title={`This server does not serve ${title.toLowerCase()} yet`}>
          <p>
            The {kind} API (<code>/api/v1/{kind}</code>) is not available in this version of the server, so
            there is nothing to show here.
          </p>
        </Empty>
      </section>
    );
  }
  return <>{children}</>;
}

/** A status as a coloured badge (pipeline, step and firing states, alert severities). */
export function State({ value }: { value: string }) {
  return <span className={`badge state-${value.toLowerCase()}`}>{value.replace(/_/g, " ")}</span>;
}

export function durationMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
}
