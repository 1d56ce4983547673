// Deployments: routing state (primary and canary weights, shadow), request rate and
// latency per variant over time from the prediction log, and the rollout history.
import { useMemo } from "react";
import { Link, Route, Routes, useParams } from "react-router-dom";
import { get } from "../api";
import { LazyMetricChart } from "../charts/Lazy";
import { Empty, formatNumber, formatTime, KeyValues, Show, useApi, useParam } from "../components/common";
import { State, WhenServed } from "./Ops";

interface Routed {
  model: string;
  version: number;
  percent?: number;
}

interface Deployment {
  name: string;
  model_uri: string;
  model: string;
  alias: string | null;
  version: number | null;
  canary: Routed | null;
  shadow: Routed | null;
  limits: Record<string, unknown>;
  logging: Record<string, unknown>;
  current_version: number | null;
  revision: number;
  created_at: number;
  created_by: string;
  updated_at: number;
}

interface Change {
  revision: number;
  action: string;
  actor: string;
  reason: string;
  state: Omit<Deployment, "name">;
  created_at: number;
}

interface Traffic {
  rows: number;
  requests: number;
  bucket_ms: number | null;
  buckets: number[];
  series: Record<string, { requests: number[]; p50_ms: (number | null)[]; p99_ms: (number | null)[]; total: number }>;
  errors: null;
}

export default function Deployments() {
  return (
    <WhenServed kind="deployments">
      <Routes>
        <Route index element={<DeploymentList />} />
        <Route path=":name" element={<DeploymentPage />} />
      </Routes>
    </WhenServed>
  );
}

function serves(d: Pick<Deployment, "alias" | "model" | "version">, current?: number | null): string {
  if (d.alias) return `${d.model}@${d.alias}${current ? ` → v${current}` : ""}`;
  return `${d.model} v${d.version}`;
}

function DeploymentList() {
  const loaded = useApi((signal) => get<{ deployments: Deployment[] }>("/api/v1/deployments", undefined, signal), []);
  return (
    <section>
      <h1>Deployments</h1>
      <Show loaded={loaded}>
        {({ deployments }) =>
          deployments.length === 0 ? (
            <Empty title="No deployments yet">
              <p>
                <code>loopline deploy create NAME --model models:/MODEL@champion</code>
              </p>
            </Empty>
          ) : (
            <table className="grid" data-testid="deployments">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Serves</th>
                  <th>Canary</th>
                  <th>Shadow</th>
                  <th>Revision</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {deployments.map((d) => (
                  <tr key={d.name}>
                    <td>
                      <Link to={`/deployments/${encodeURIComponent(d.name)}`}>{d.name}</Link>
                    </td>
                    <td>{serves(d, d.current_version)}</td>
                    <td>{d.canary ? `v${d.canary.version}, ${d.canary.percent}%` : ""}</td>
                    <td>{d.shadow ? `v${d.shadow.version}` : ""}</td>
                    <td>{d.revision}</td>
                    <td>{formatTime(d.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </section>
  );
}

function DeploymentPage() {
  const { name = "" } = useParams();
  const path = `/api/v1/deployments/${encodeURIComponent(name)}`;
  const loaded = useApi(
    (signal) =>
      Promise.all([
        get<Deployment>(path, undefined, signal),
        get<{ history: Change[] }>(`${path}/history`, undefined, signal),
      ]),
    [path],
  );
  return (
    <Show loaded={loaded}>
      {([deployment, { history }]) => (
        <section>
          <div className="toolbar">
            <h1>{deployment.name}</h1>
            <span className="muted">
              revision {deployment.revision} · created {formatTime(deployment.created_at)} by {deployment.created_by}
            </span>
          </div>
          <div className="columns">
            <div className="card">
              <h3>Traffic split</h3>
              <Split deployment={deployment} />
            </div>
            <div className="card">
              <h3>Limits</h3>
              <KeyValues values={deployment.limits} />
              <p className="muted">A canary breaching these over the window is rolled back by its server.</p>
              <p className="muted">{promotionRule(deployment.limits)}</p>
            </div>
          </div>
          <TrafficCharts name={deployment.name} />
          <div className="card">
            <h3>Rollout history</h3>
            <History history={history} />
          </div>
        </section>
      )}
    </Show>
  );
}

function Split({ deployment: d }: { deployment: Deployment }) {
  const canary = d.canary?.percent ?? 0;
  return (
    <div data-testid="traffic-split">
      <div className="split" role="img" aria-label={`primary ${100 - canary}%, canary ${canary}%`}>
        <div className="part primary" style={{ width: `${100 - canary}%` }}>
          primary {formatNumber(100 - canary)}%
        </div>
        {canary > 0 ? (
          <div className="part canary" style={{ width: `${canary}%` }}>
            canary {formatNumber(canary)}%
          </div>
        ) : null}
      </div>
      <table className="kv">
        <tbody>
          <tr>
            <th>primary</th>
            <td>
              <Link to={`/models/model?name=${encodeURIComponent(d.model)}`}>{serves(d, d.current_version)}</Link>
            </td>
          </tr>
          <tr>
            <th>canary</th>
            <td>{d.canary ? `${d.canary.model} v${d.canary.version} takes ${d.canary.percent}% of requests` : "none"}</td>
          </tr>
          <tr>
            <th>shadow</th>
            <td>
              {d.shadow
                ? `${d.shadow.model} v${d.shadow.version} sees every request; its answers are logged, never returned`
                : "none"}
            </td>
          </tr>
        </tbody>
      </table>
    </div>
  );
}

const WINDOWS: [string, string][] = [
  ["1", "last hour"],
  ["24", "last day"],
  ["168", "last week"],
  ["720", "last 30 days"],
];

function TrafficCharts({ name }: { name: string }) {
  const [hours, setHours] = useParam("hours", "24");
  const loaded = useApi(
    (signal) =>
      get<Traffic>(`/api/v1/ui/deployments/${encodeURIComponent(name)}/traffic`, { hours, buckets: 120 }, signal),
    [name, hours],
  );
  return (
    <div className="card" data-testid="traffic">
      <div className="toolbar small">
        <h3>Requests and latency</h3>
        <select aria-label="Time window" value={hours} onChange={(e) => setHours(e.target.value)}>
          {WINDOWS.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <Show loaded={loaded}>{(traffic) => <TrafficBody traffic={traffic} />}</Show>
    </div>
  );
}

function TrafficBody({ traffic }: { traffic: Traffic }) {
  const charts = useMemo(() => {
    const variants = Object.keys(traffic.series);
    const of = (pick: (s: Traffic["series"][string]) => (number | null)[], suffix = "") =>
      variants.map((v) => ({ label: `${v}${suffix}`, xs: traffic.buckets, ys: pick(traffic.series[v]) }));
    return {
      requests: of((s) => s.requests),
      latency: [...of((s) => s.p50_ms, " p50"), ...of((s) => s.p99_ms, " p99")],
    };
  }, [traffic]);
  if (traffic.requests === 0)
    return (
      <Empty title="No logged requests in this window">
        <p>Requests appear here once the deployment's server logs predictions.</p>
      </Empty>
    );
  const per = traffic.bucket_ms ? `${formatNumber(traffic.bucket_ms / 1000)} s` : "";
  return (
    <>
      <p className="muted" data-testid="traffic-summary">
        {traffic.requests} requests ({traffic.rows} rows) in the prediction log:{" "}
        {Object.entries(traffic.series)
          .map(([v, s]) => `${v} ${s.total}`)
          .join(", ")}
        . Counted per {per}.
      </p>
      <div className="columns">
        <LazyMetricChart series={charts.requests} x="time" title={`requests per ${per}`} height={220} />
        <LazyMetricChart series={charts.latency} x="time" title="latency (ms)" height={220} />
      </div>
      <p className="muted" data-testid="errors-note">
        Errors over time are not shown: failed requests are not written to the prediction log, so this server
        cannot count them. Each inference server counts them in its Prometheus metrics (<code>GET /metrics</code>,{" "}
        <code>loopline_inference_errors_total</code>).
      </p>
    </>
  );
}

function History({ history }: { history: Change[] }) {
  return (
    <table className="grid" data-testid="rollout-history">
      <thead>
        <tr>
          <th>Revision</th>
          <th>When</th>
          <th>Action</th>
          <th>By</th>
          <th>Reason</th>
          <th>Serving after</th>
        </tr>
      </thead>
      <tbody>
        {[...history].reverse().map((h) => (
          <tr key={h.revision}>
            <td>{h.revision}</td>
            <td>{formatTime(h.created_at)}</td>
            <td>
              <State value={h.action} />
            </td>
            <td>{h.actor}</td>
            <td>{h.reason}</td>
            <td>
              {serves(h.state)}
              {h.state.canary ? `; canary v${h.state.canary.version} ${h.state.canary.percent}%` : ""}
              {h.state.shadow ? `; shadow v${h.state.shadow.version}` : ""}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

// The automatic promotion rule stored with the limits, in words (as `loopline deploy status` says it).
function promotionRule(limits: Record<string, unknown>): string {
  const requests = Number(limits.promote_after_requests ?? 0);
  const seconds = Number(limits.promote_after_seconds ?? 0);
  const parts = [requests > 0 ? `${requests} requests` : "", seconds > 0 ? `${seconds} s` : ""].filter(Boolean);
  if (parts.length === 0) return "Promotion is manual (loopline deploy promote).";
  return `Promoted by its server after ${parts.join(" and ")} within these limits.`;
}
