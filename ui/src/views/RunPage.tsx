import { useMemo } from "react";
import { Link, useParams } from "react-router-dom";
import { get, metricHistories, metricNumber, prefetch, historiesQuery, type ArtifactFile, type History, type Run } from "../api";
import { LazyMetricChart, preloadCharts } from "../charts/Lazy";
import { Artifacts } from "../components/Artifacts";
import { ChartControls, useChartSettings } from "../components/ChartControls";
import {
  Empty,
  formatDuration,
  formatNumber,
  formatTime,
  KeyValues,
  RunLink,
  Show,
  Status,
  Tabs,
  useApi,
  useParam,
  useTab,
} from "../components/common";

const TABS: [string, string][] = [
  ["overview", "Overview"],
  ["metrics", "Metrics"],
  ["artifacts", "Artifacts"],
  ["lineage", "Lineage"],
];

export default function RunPage() {
  const { runId = "" } = useParams();
  const tab = useTab(TABS);
  const [x] = useParam("x", "step");
  const charts = tab === "metrics";
  useMemo(() => {
    if (!charts) return;
    // The run and its curves are read at once, and the chart code loads meanwhile.
    prefetch("/api/v1/ui/metric-histories", historiesQuery(runId, x));
    preloadCharts();
  }, [runId, x, charts]);
  const loaded = useApi(
    (signal) => get<{ run: Run }>(`/api/v1/runs/${encodeURIComponent(runId)}`, undefined, signal),
    [runId],
  );
  return (
    <Show loaded={loaded}>
      {({ run }) => (
        <section>
          <div className="toolbar">
            <h1>
              {run.info.run_name || run.info.run_id} <Status value={run.info.status} />
            </h1>
            <span className="muted mono">{run.info.run_id}</span>
            <span className="spacer" />
            <Link to={`/runs?e=${run.info.experiment_id}`}>All runs of its experiment</Link>
          </div>
          <Tabs tabs={TABS} />
          {tab === "overview" ? <Overview run={run} /> : null}
          {tab === "metrics" ? <Metrics run={run} /> : null}
          {tab === "artifacts" ? <Artifacts runId={run.info.run_id} /> : null}
          {tab === "lineage" ? <Lineage run={run} /> : null}
        </section>
      )}
    </Show>
  );
}

const SOURCE_TAG = /(source|git|commit|entry|python|platform|host|docker|env|version)/i;
const ENV_FILE = /(^|\/)(requirements\.txt|python_env\.yaml|conda\.yaml|loopline-model\.yaml|MLmodel)$/;

function Overview({ run }: { run: Run }) {
  const { info, data } = run;
  const metrics = Object.fromEntries(
    Object.entries(data.metrics).map(([k, v]) => [k, formatNumber(metricNumber(v))]),
  );
  const source = Object.fromEntries(Object.entries(data.tags).filter(([k]) => SOURCE_TAG.test(k)));
  const files = useApi(
    (signal) =>
      get<{ files: ArtifactFile[] }>(
        `/api/v1/runs/${encodeURIComponent(info.run_id)}/artifacts`,
        { recursive: true },
        signal,
      ),
    [info.run_id],
  );
  const envFiles = (files.data?.files ?? []).filter((f) => ENV_FILE.test(f.path));
  return (
    <div className="columns">
      <div className="card">
        <h3>Run</h3>
        <table className="kv">
          <tbody>
            <tr>
              <th>Experiment</th>
              <td>
                <Link to={`/runs?e=${info.experiment_id}`}>{info.experiment_id}</Link>
              </td>
            </tr>
            <tr>
              <th>User</th>
              <td>{info.user_id}</td>
            </tr>
            <tr>
              <th>Started</th>
              <td>{formatTime(info.start_time)}</td>
            </tr>
            <tr>
              <th>Ended</th>
              <td>{formatTime(info.end_time)}</td>
            </tr>
            <tr>
              <th>Duration</th>
              <td>{formatDuration(info.start_time, info.end_time)}</td>
            </tr>
            {info.parent_run_id ? (
              <tr>
                <th>Parent run</th>
                <td>
                  <RunLink id={info.parent_run_id} />
                </td>
              </tr>
            ) : null}
            <tr>
              <th>Artifacts</th>
              <td className="mono">{info.artifact_uri}</td>
            </tr>
          </tbody>
        </table>
        <h3>Source and environment</h3>
        <KeyValues values={source} empty="No source tags were logged." />
        {envFiles.length ? (
          <ul className="plain">
            {envFiles.map((f) => (
              <li key={f.path}>
                <Link to={`?tab=artifacts&file=${encodeURIComponent(f.path)}`}>{f.path}</Link>
              </li>
            ))}
          </ul>
        ) : null}
      </div>
      <div className="card">
        <h3>Params</h3>
        <KeyValues values={data.params} empty="No params." />
      </div>
      <div className="card">
        <h3>Metrics (latest)</h3>
        <KeyValues values={metrics} empty="No metrics." />
      </div>
      <div className="card">
        <h3>Tags</h3>
        <KeyValues values={data.tags} empty="No tags." />
      </div>
    </div>
  );
}

function Metrics({ run }: { run: Run }) {
  const settings = useChartSettings();
  const [needle, setNeedle] = useParam("metric");
  const keys = Object.keys(run.data.metrics)
    .sort()
    .filter((k) => k.toLowerCase().includes(needle.toLowerCase()));
  const all = useApi(
    (signal) => metricHistories(run.info.run_id, settings.x, signal),
    [run.info.run_id, settings.x],
  );
  const wanted = new Set(keys);
  const histories = { ...all, data: all.data?.filter((h) => wanted.has(h.key)) };
  if (Object.keys(run.data.metrics).length === 0) return <Empty title="This run logged no metrics" />;
  return (
    <div>
      <div className="toolbar small">
        <input
          type="search"
          aria-label="Filter metrics"
          placeholder="filter metrics"
          value={needle}
          onChange={(e) => setNeedle(e.target.value)}
        />
        <ChartControls />
      </div>
      <Show loaded={histories}>{(found) => <MetricGrid histories={found} settings={settings} />}</Show>
    </div>
  );
}

function MetricGrid({
  histories,
  settings,
}: {
  histories: History[];
  settings: ReturnType<typeof useChartSettings>;
}) {
  const curves = histories.filter((h) => h.total > 1);
  const single = histories.filter((h) => h.total <= 1);
  return (
    <>
      <div className="chart-grid">
        {curves.map((h) => (
          <div className="card" key={h.key}>
            <h4>
              {h.key}{" "}
              <span className="muted">
                {h.total.toLocaleString()} points{h.values.length < h.total ? `, ${h.values.length} drawn` : ""}
              </span>
            </h4>
            <LazyMetricChart
              series={[
                { label: h.key, xs: settings.x === "time" ? h.timestamps : h.steps, ys: h.values },
              ]}
              x={settings.x}
              log={settings.log}
              smoothing={settings.smoothing}
              height={220}
            />
          </div>
        ))}
      </div>
      {single.length ? (
        <div className="card">
          <h3>Single-value metrics</h3>
          <KeyValues values={Object.fromEntries(single.map((h) => [h.key, formatNumber(h.values[0])]))} />
        </div>
      ) : null}
    </>
  );
}

interface DataLineage {
  lineage: { datasets: [string, string][] };
}

interface Version {
  name: string;
  version: number;
  aliases: string[];
  review_status: string;
}

function Lineage({ run }: { run: Run }) {
  const id = run.info.run_id;
  const inputs = useApi(
    (signal) => get<DataLineage>("/api/v1/ui/data/lineage", { run_id: id }, signal),
    [id],
  );
  const models = useApi(
    (signal) =>
      get<{ versions: Version[] }>("/api/v1/registry/versions", { filter: `run_id = '${id}'` }, signal),
    [id],
  );
  return (
    <div className="lineage">
      <div className="card">
        <h3>Data it read</h3>
        <Show loaded={inputs}>
          {({ lineage }) =>
            lineage.datasets.length ? (
              <ul className="plain">
                {lineage.datasets.map(([ref, context]) => {
                  const [name, version] = ref.split("@");
                  return (
                    <li key={ref}>
                      <Link to={`/data/${encodeURIComponent(name)}/${version}`}>{ref}</Link>{" "}
                      <span className="muted">{context}</span>
                    </li>
                  );
                })}
              </ul>
            ) : (
              <p className="muted">No dataset version was recorded as an input.</p>
            )
          }
        </Show>
      </div>
      <div className="arrow">→</div>
      <div className="card">
        <h3>This run</h3>
        <p>{run.info.run_name}</p>
      </div>
      <div className="arrow">→</div>
      <div className="card">
        <h3>Model versions</h3>
        <Show loaded={models}>
          {({ versions }) =>
            versions.length ? (
              <ul className="plain">
                {versions.map((v) => (
                  <li key={`${v.name}@${v.version}`}>
                    <Link to={`/models/version?name=${encodeURIComponent(v.name)}&version=${v.version}`}>
                      {v.name}@{v.version}
                    </Link>{" "}
                    {v.aliases.map((a) => (
                      <span key={a} className="badge">
                        @{a}
                      </span>
                    ))}
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">No registered model version came from this run.</p>
            )
          }
        </Show>
      </div>
    </div>
  );
}
