// Monitoring: monitors, per-feature drift over time, reference against current
// distributions of one run, data quality, model quality once labels arrive, alerts.
import { useMemo, type ReactElement } from "react";
import { Link, Route, Routes, useParams } from "react-router-dom";
import { get } from "../api";
import { LazyMetricChart } from "../charts/Lazy";
import { Empty, formatNumber, formatTime, Show, Tabs, useApi, useParam, useTab } from "../components/common";
import { State, WhenServed } from "./Ops";

interface Monitor {
  name: string;
  deployment: string;
  reference: string;
  target: string | null;
  prediction: string | null;
  window: string;
  schedule: string | null;
  webhook: string | null;
  created_at: number;
  created_by: string;
  last_run_at: number | null;
}

interface Alert {
  id: number;
  monitor: string;
  run_id: number | null;
  severity: string;
  kind: string;
  message: string;
  delivery: string;
  created_at: number;
}

// Numeric columns carry `edges`, categorical ones `categories`; an empty object when neither.
type Distribution = { edges?: number[]; categories?: string[]; ref?: number[]; cur?: number[] };

interface ColumnDrift {
  column: string;
  kind: string;
  role: string;
  method: string;
  statistic: number | string;
  p_value: number | null;
  threshold: number;
  drifted: boolean;
  distribution: Distribution;
}

interface QualityCheck {
  check: string;
  column: string | null;
  value: number;
  threshold: number;
  failed: boolean;
  message: string;
}

interface Performance {
  rows: number;
  task?: string;
  current: Record<string, number>;
  reference: Record<string, number>;
  detector?: string;
  changes?: number[];
}

interface MonitorRun {
  id: number;
  window_start: number | null;
  window_end: number | null;
  rows: number;
  dataset_drift: boolean;
  drift_share: number;
  started_at: number;
  finished_at: number;
  summary: {
    rows: number;
    drift: { drifted_columns: string[]; share_threshold: number; ref_rows: number; cur_rows: number; columns: ColumnDrift[] };
    quality: QualityCheck[];
    performance: Performance | null;
  };
}

interface Result {
  run_id: number;
  column_name: string;
  category: string;
  metric: string;
  value: number | null;
  p_value: number | null;
  threshold: number | null;
  flagged: boolean;
  created_at: number;
}

export default function Monitoring() {
  return (
    <WhenServed kind="monitors">
      <Routes>
        <Route index element={<MonitorList />} />
        <Route path=":name" element={<MonitorPage />} />
      </Routes>
    </WhenServed>
  );
}

function MonitorList() {
  const loaded = useApi(
    (signal) =>
      Promise.all([
        get<{ monitors: Monitor[] }>("/api/v1/monitors", undefined, signal),
        get<{ alerts: Alert[] }>("/api/v1/monitors/alerts", { limit: 50 }, signal),
      ]),
    [],
  );
  return (
    <section>
      <h1>Monitoring</h1>
      <Show loaded={loaded}>
        {([{ monitors }, { alerts }]) =>
          monitors.length === 0 ? (
            <Empty title="No monitors yet">
              <p>
                <code>loopline monitor create NAME --deployment NAME --reference DATASET@VERSION</code>
              </p>
            </Empty>
          ) : (
            <>
              <table className="grid" data-testid="monitors">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Deployment</th>
                    <th>Reference</th>
                    <th>Window</th>
                    <th>Schedule</th>
                    <th>Last run</th>
                  </tr>
                </thead>
                <tbody>
                  {monitors.map((m) => (
                    <tr key={m.name}>
                      <td>
                        <Link to={`/monitoring/${encodeURIComponent(m.name)}`}>{m.name}</Link>
                      </td>
                      <td>
                        <Link to={`/deployments/${encodeURIComponent(m.deployment)}`}>{m.deployment}</Link>
                      </td>
                      <td>{m.reference}</td>
                      <td>{m.window}</td>
                      <td>{m.schedule ?? ""}</td>
                      <td>{formatTime(m.last_run_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <h3 className="spaced">Recent alerts</h3>
              <Alerts alerts={alerts} withMonitor />
            </>
          )
        }
      </Show>
    </section>
  );
}

function Alerts({ alerts, withMonitor = false }: { alerts: Alert[]; withMonitor?: boolean }) {
  if (alerts.length === 0) return <p className="muted">No alerts.</p>;
  return (
    <table className="grid" data-testid="alerts">
      <thead>
        <tr>
          <th>When</th>
          {withMonitor ? <th>Monitor</th> : null}
          <th>Severity</th>
          <th>Kind</th>
          <th>Message</th>
          <th>Webhook</th>
        </tr>
      </thead>
      <tbody>
        {alerts.map((a) => (
          <tr key={a.id}>
            <td>{formatTime(a.created_at)}</td>
            {withMonitor ? (
              <td>
                <Link to={`/monitoring/${encodeURIComponent(a.monitor)}`}>{a.monitor}</Link>
              </td>
            ) : null}
            <td>
              <State value={a.severity} />
            </td>
            <td>{a.kind}</td>
            <td>{a.message}</td>
            <td>{a.delivery}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const TABS: [string, string][] = [
  ["drift", "Drift"],
  ["quality", "Data quality"],
  ["performance", "Model quality"],
  ["alerts", "Alerts"],
];

function MonitorPage() {
  const { name = "" } = useParams();
  const path = `/api/v1/monitors/${encodeURIComponent(name)}`;
  const tab = useTab(TABS);
  const loaded = useApi(
    (signal) =>
      Promise.all([
        get<{ monitor: Monitor }>(path, undefined, signal),
        get<{ runs: MonitorRun[] }>(`${path}/runs`, { limit: 100 }, signal),
      ]),
    [path],
  );
  return (
    <Show loaded={loaded}>
      {([{ monitor }, { runs }]) => (
        <section>
          <div className="toolbar">
            <h1>{monitor.name}</h1>
            <span className="muted">
              watches <Link to={`/deployments/${encodeURIComponent(monitor.deployment)}`}>{monitor.deployment}</Link>{" "}
              against {monitor.reference} · window {monitor.window}
              {monitor.schedule ? ` · runs ${monitor.schedule}` : ""}
              {monitor.target ? ` · labels in ${monitor.target}` : ""}
            </span>
          </div>
          <Tabs tabs={TABS} />
          {runs.length === 0 && tab !== "alerts" ? (
            <Empty title="This monitor has not run yet">
              <p>
                <code>loopline monitor run {monitor.name}</code>
              </p>
            </Empty>
          ) : tab === "drift" ? (
            <DriftTab path={path} runs={runs} />
          ) : tab === "quality" ? (
            <QualityTab runs={runs} />
          ) : tab === "performance" ? (
            <PerformanceTab path={path} runs={runs} target={monitor.target} />
          ) : (
            <MonitorAlerts path={path} />
          )}
        </section>
      )}
    </Show>
  );
}

/** The run named in the URL (`?run=`), else the newest. */
function useRun(runs: MonitorRun[]): [MonitorRun, (id: string) => void, ReactElement] {
  const [wanted, setWanted] = useParam("run");
  const run = runs.find((r) => String(r.id) === wanted) ?? runs[0];
  const picker = (
    <select aria-label="Monitor run" value={String(run.id)} onChange={(e) => setWanted(e.target.value)}>
      {runs.map((r) => (
        <option key={r.id} value={r.id}>
          run {r.id} · {formatTime(r.finished_at)} · {r.rows} rows{r.dataset_drift ? " · drift" : ""}
        </option>
      ))}
    </select>
  );
  return [run, setWanted, picker];
}

function seriesBy(results: Result[], pick: (r: Result) => number | null, keyOf: (r: Result) => string) {
  const keys = [...new Set(results.map(keyOf))];
  const times = [...new Set(results.map((r) => r.created_at))].sort((a, b) => a - b);
  return keys.map((key) => {
    const at = new Map(results.filter((r) => keyOf(r) === key).map((r) => [r.created_at, pick(r)]));
    return { label: key, xs: times, ys: times.map((t) => at.get(t) ?? null) };
  });
}

function DriftTab({ path, runs }: { path: string; runs: MonitorRun[] }) {
  const [run, , picker] = useRun(runs);
  const history = useApi(
    (signal) => get<{ history: Result[] }>(`${path}/history`, { category: "drift" }, signal),
    [path],
  );
  const drift = run.summary.drift;
  return (
    <>
      <div className="card">
        <h3>Drift score per feature over time</h3>
        <Show loaded={history}>
          {({ history: results }) => <DriftOverTime results={results} />}
        </Show>
      </div>
      <div className="card">
        <div className="toolbar small">
          <h3>Reference against current</h3>
          {picker}
        </div>
        <p className="muted" data-testid="drift-verdict">
          {run.dataset_drift ? "Dataset drift" : "No dataset drift"}: {drift.drifted_columns.length} of{" "}
          {drift.columns.filter((c) => c.role === "feature").length} features drifted (
          {formatNumber(run.drift_share * 100)}%, threshold {formatNumber(drift.share_threshold * 100)}%); reference{" "}
          {drift.ref_rows} rows, window {drift.cur_rows} rows.
        </p>
        <div className="distributions" data-testid="distributions">
          {drift.columns.map((c) => (
            <div key={c.column} className={`dist card${c.drifted ? " drifted" : ""}`} data-column={c.column}>
              <h4>
                {c.column} {c.drifted ? <State value="drifted" /> : null}
              </h4>
              <div className="muted small">
                {c.method} {typeof c.statistic === "number" ? formatNumber(c.statistic) : c.statistic}
                {c.p_value !== null ? `, p = ${formatNumber(c.p_value)}` : ""} (threshold {formatNumber(c.threshold)})
              </div>
              <DistributionChart distribution={c.distribution} />
            </div>
          ))}
        </div>
        <p className="muted">
          <span className="swatch ref" /> reference <span className="swatch cur" /> current window
        </p>
      </div>
    </>
  );
}

function DriftOverTime({ results }: { results: Result[] }) {
  const series = useMemo(
    () => seriesBy(results, (r) => r.value, (r) => r.column_name),
    [results],
  );
  if (series.length === 0) return <p className="muted">No drift results yet.</p>;
  const methods = [...new Set(results.map((r) => r.metric))].join(", ");
  return (
    <>
      <LazyMetricChart series={series} x="time" height={260} />
      <p className="muted">The test statistic of each run ({methods}); higher is further from the reference.</p>
    </>
  );
}

const W = 260;
const H = 110;

function DistributionChart({ distribution }: { distribution: Distribution }) {
  const { edges, categories, ref = [], cur = [] } = distribution;
  if (edges && edges.length > 1) return <NumericBars edges={edges} ref={ref} cur={cur} />;
  if (categories && categories.length > 0) return <CategoryBars categories={categories} ref={ref} cur={cur} />;
  return <p className="muted">No distribution recorded.</p>;
}

function NumericBars({ edges, ref, cur }: { edges: number[]; ref: number[]; cur: number[] }) {
  // Cells are equal-mass cells of the reference, so widths differ: bars show density.
  const lo = edges[0];
  const hi = edges[edges.length - 1];
  const span = hi - lo || 1;
  const widths = edges.slice(1).map((e, i) => Math.max(e - edges[i], span / 1000));
  const density = (shares: number[]) => shares.map((s, i) => s / widths[i]);
  const dr = density(ref);
  const dc = density(cur);
  const top = Math.max(...dr, ...dc) || 1;
  const x = (v: number) => ((v - lo) / span) * W;
  const bars = (d: number[], cls: string) =>
    d.map((v, i) => (
      <rect
        key={`${cls}${i}`}
        className={cls}
        x={x(edges[i])}
        width={Math.max(x(edges[i] + widths[i]) - x(edges[i]), 1)}
        y={H - (v / top) * H}
        height={(v / top) * H}
      />
    ));
  return (
    <svg className="bars" viewBox={`0 0 ${W} ${H + 14}`} width={W} height={H + 14} role="img" aria-label="distribution">
      {bars(dr, "ref")}
      {bars(dc, "cur")}
      <text x={0} y={H + 12} className="tick">
        {formatNumber(lo)}
      </text>
      <text x={W} y={H + 12} className="tick" textAnchor="end">
        {formatNumber(hi)}
      </text>
    </svg>
  );
}

function CategoryBars({ categories, ref, cur }: { categories: string[]; ref: number[]; cur: number[] }) {
  const shown = categories.slice(0, 12);
  const top = Math.max(...ref.slice(0, 12), ...cur.slice(0, 12)) || 1;
  const band = W / shown.length;
  return (
    <svg className="bars" viewBox={`0 0 ${W} ${H + 14}`} width={W} height={H + 14} role="img" aria-label="distribution">
      {shown.map((c, i) => (
        <g key={c}>
          <rect className="ref" x={i * band + 2} width={band / 2 - 2} y={H - (ref[i] / top) * H} height={(ref[i] / top) * H} />
          <rect className="cur" x={i * band + band / 2} width={band / 2 - 2} y={H - (cur[i] / top) * H} height={(cur[i] / top) * H} />
          <text x={i * band + band / 2} y={H + 12} className="tick" textAnchor="middle">
            {c.length > 8 ? `${c.slice(0, 7)}…` : c}
          </text>
        </g>
      ))}
    </svg>
  );
}

function QualityTab({ runs }: { runs: MonitorRun[] }) {
  const [run, , picker] = useRun(runs);
  const checks = run.summary.quality;
  return (
    <div className="card">
      <div className="toolbar small">
        <h3>Data quality of the window</h3>
        {picker}
      </div>
      {checks.length === 0 ? (
        <p className="muted">No checks ran.</p>
      ) : (
        <table className="grid" data-testid="quality">
          <thead>
            <tr>
              <th>Check</th>
              <th>Column</th>
              <th>Value</th>
              <th>Threshold</th>
              <th>Result</th>
              <th>Message</th>
            </tr>
          </thead>
          <tbody>
            {checks.map((c, i) => (
              <tr key={i} className={c.failed ? "differs" : ""}>
                <td>{c.check.replace(/_/g, " ")}</td>
                <td>{c.column ?? "*"}</td>
                <td>{formatNumber(c.value)}</td>
                <td>{formatNumber(c.threshold)}</td>
                <td>{c.failed ? <State value="failed" /> : <State value="passed" />}</td>
                <td>{c.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function PerformanceTab({ path, runs, target }: { path: string; runs: MonitorRun[]; target: string | null }) {
  const [run, , picker] = useRun(runs);
  const history = useApi(
    (signal) => get<{ history: Result[] }>(`${path}/history`, { category: "performance" }, signal),
    [path],
  );
  const series = useMemo(
    () => (history.data ? seriesBy(history.data.history, (r) => r.value, (r) => r.metric) : []),
    [history.data],
  );
  if (!target)
    return (
      <Empty title="No labels to score against">
        <p>
          This monitor has no target column: create it with <code>--target COLUMN</code> and send ground truth to the
          server's <code>POST /v1/feedback</code>.
        </p>
      </Empty>
    );
  const perf = run.summary.performance;
  return (
    <>
      <div className="card">
        <h3>Model quality over time</h3>
        {series.length ? (
          <LazyMetricChart series={series} x="time" height={240} />
        ) : (
          <p className="muted">No labelled predictions yet.</p>
        )}
      </div>
      <div className="card">
        <div className="toolbar small">
          <h3>Current window against the reference</h3>
          {picker}
        </div>
        {!perf || perf.rows === 0 ? (
          <p className="muted">No feedback joined this window's predictions yet: quality appears once labels arrive.</p>
        ) : (
          <>
            <table className="grid" data-testid="performance">
              <thead>
                <tr>
                  <th>Metric</th>
                  <th>Current</th>
                  <th>Reference</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(perf.current).map(([k, v]) => (
                  <tr key={k}>
                    <td>{k}</td>
                    <td>{formatNumber(v)}</td>
                    <td>{perf.reference[k] === undefined ? "" : formatNumber(perf.reference[k])}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p className="muted">
              {perf.rows} labelled rows ({perf.task}).{" "}
              {perf.detector
                ? `${perf.detector} on the error stream: ${perf.changes?.length ? `changes at rows ${perf.changes.join(", ")}` : "no change detected"}.`
                : ""}
            </p>
          </>
        )}
      </div>
    </>
  );
}

function MonitorAlerts({ path }: { path: string }) {
  const loaded = useApi((signal) => get<{ alerts: Alert[] }>(`${path}/alerts`, undefined, signal), [path]);
  return <Show loaded={loaded}>{({ alerts }) => <Alerts alerts={alerts} />}</Show>;
}
