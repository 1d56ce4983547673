import { useMemo } from "react";
import { Link } from "react-router-dom";
import { compareHistories, get, metricNumber, type Run } from "../api";
import { LazyMetricChart, LazyScatterChart, preloadCharts } from "../charts/Lazy";
import type { Point, Series } from "../charts/MetricChart";
import { ChartControls, useChartSettings } from "../components/ChartControls";
import { Empty, formatNumber, Show, useApi, useParam } from "../components/common";

type Counts = Record<string, number>;

// Every comparison draws charts: their code loads while the runs are read.
preloadCharts();

function label(run: Run): string {
  return run.info.run_name || run.info.run_id.slice(0, 12);
}

export default function Compare() {
  const [runsParam] = useParam("runs");
  const ids = runsParam.split(",").filter(Boolean);
  const loaded = useApi(
    async (signal) => {
      const [runs, counts] = await Promise.all([
        Promise.all(
          ids.map((id) => get<{ run: Run }>(`/api/v1/runs/${encodeURIComponent(id)}`, undefined, signal)),
        ),
        get<{ counts: Counts }>("/api/v1/ui/metric-counts", { run_ids: ids.join(",") }, signal),
      ]);
      return { runs: runs.map((r) => r.run), counts: counts.counts };
    },
    [runsParam],
  );
  if (ids.length === 0)
    return (
      <Empty title="No runs to compare">
        <p>
          Tick runs in a <Link to="/experiments">runs table</Link> and press “Compare”.
        </p>
      </Empty>
    );
  return (
    <section>
      <div className="toolbar">
        <h1>Compare {ids.length} runs</h1>
      </div>
      <Show loaded={loaded}>
        {({ runs, counts }) => (
          <>
            <Curves runs={runs} counts={counts} />
            <Scatter runs={runs} />
            <DiffTable runs={runs} />
          </>
        )}
      </Show>
    </section>
  );
}

function Curves({ runs, counts }: { runs: Run[]; counts: Counts }) {
  const settings = useChartSettings();
  const keys = Object.keys(counts).sort();
  const curveKeys = keys.filter((k) => counts[k] > 1);
  const [metricParam, setMetric] = useParam("metric");
  const metric = metricParam || curveKeys[0] || keys[0] || "";
  const histories = useApi(
    async (signal) => {
      const byId = new Map(runs.map((r) => [r.info.run_id, r]));
      const found = await compareHistories([...byId.keys()], metric, settings.x, 1500, signal);
      return found.map((history) => ({ run: byId.get(history.run_id)!, history }));
    },
    [runs, metric, settings.x],
  );
  const series: Series[] | undefined = useMemo(
    () =>
      histories.data?.map(({ run, history }) => ({
        label: label(run),
        xs: settings.x === "time" ? history.timestamps : history.steps,
        ys: history.values,
      })),
    [histories.data, settings.x],
  );
  if (keys.length === 0) return <p className="muted">These runs logged no metrics.</p>;
  return (
    <div className="card">
      <div className="toolbar small">
        <h3>Metric curves</h3>
        <select aria-label="Metric" value={metric} onChange={(e) => setMetric(e.target.value)}>
          {keys.map((k) => (
            <option key={k} value={k}>
              {k}
              {counts[k] > 1 ? "" : " (one value)"}
            </option>
          ))}
        </select>
        <ChartControls />
      </div>
      <Show loaded={histories}>
        {() =>
          series && series.length ? (
            <LazyMetricChart series={series} x={settings.x} log={settings.log} smoothing={settings.smoothing} />
          ) : (
            <p className="muted">No run logged {metric}.</p>
          )
        }
      </Show>
    </div>
  );
}

function Scatter({ runs }: { runs: Run[] }) {
  const params = [...new Set(runs.flatMap((r) => Object.keys(r.data.params)))].sort();
  const metrics = [...new Set(runs.flatMap((r) => Object.keys(r.data.metrics)))].sort();
  const [paramChoice, setParam] = useParam("param");
  const [yChoice, setY] = useParam("y");
  // Default to a param every run has and that differs between them: a constant one says nothing.
  const varying = params.filter((p) => new Set(runs.map((r) => r.data.params[p])).size > 1);
  const shared = varying.filter((p) => runs.every((r) => p in r.data.params));
  const param = paramChoice || shared[0] || varying[0] || params[0] || "";
  const y = yChoice || metrics[0] || "";
  const { points, categories } = useMemo(() => {
    const values = runs.map((r) => r.data.params[param]);
    const numeric = values.every((v) => v === undefined || (v !== "" && !Number.isNaN(Number(v))));
    const cats = numeric ? undefined : [...new Set(values.filter((v) => v !== undefined))].sort();
    const found: Point[] = [];
    for (const run of runs) {
      const raw = run.data.params[param];
      const metric = metricNumber(run.data.metrics[y]);
      if (raw === undefined || metric === null || !Number.isFinite(metric)) continue;
      found.push({ label: label(run), x: cats ? cats.indexOf(raw) : Number(raw), y: metric });
    }
    return { points: found, categories: cats };
  }, [runs, param, y]);
  if (!params.length || !metrics.length) return null;
  return (
    <div className="card">
      <div className="toolbar small">
        <h3>Params against a metric</h3>
        <select aria-label="Param" value={param} onChange={(e) => setParam(e.target.value)}>
          {params.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
        <span>against</span>
        <select aria-label="Scatter metric" value={y} onChange={(e) => setY(e.target.value)}>
          {metrics.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
      </div>
      {points.length ? (
        <LazyScatterChart points={points} xLabel={param} yLabel={y} categories={categories} />
      ) : (
        <p className="muted">No run has both {param} and {y}.</p>
      )}
    </div>
  );
}

function DiffTable({ runs }: { runs: Run[] }) {
  const [onlyDiff, setOnlyDiff] = useParam("diff", "0");
  const rows = useMemo(() => {
    const out: { section: string; key: string; cells: string[]; differs: boolean }[] = [];
    const sections: [string, (r: Run) => Record<string, string>][] = [
      ["params", (r) => r.data.params],
      [
        "metrics",
        (r) =>
          Object.fromEntries(Object.entries(r.data.metrics).map(([k, v]) => [k, formatNumber(metricNumber(v))])),
      ],
    ];
    for (const [section, pick] of sections) {
      const maps = runs.map(pick);
      const keys = [...new Set(maps.flatMap((m) => Object.keys(m)))].sort();
      for (const key of keys) {
        const cells = maps.map((m) => m[key] ?? "");
        out.push({ section, key, cells, differs: new Set(cells).size > 1 });
      }
    }
    return out;
  }, [runs]);
  const shown = onlyDiff === "1" ? rows.filter((r) => r.differs) : rows;
  return (
    <div className="card">
      <div className="toolbar small">
        <h3>Params and latest metrics</h3>
        <label>
          <input
            type="checkbox"
            checked={onlyDiff === "1"}
            onChange={(e) => setOnlyDiff(e.target.checked ? "1" : "0")}
          />{" "}
          only differences
        </label>
      </div>
      <div className="scroll-x">
        <table className="grid diff" data-testid="diff-table">
          <thead>
            <tr>
              <th />
              <th>Key</th>
              {runs.map((r) => (
                <th key={r.info.run_id}>
                  <Link to={`/runs/${r.info.run_id}`}>{label(r)}</Link>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((row) => (
              <tr key={`${row.section}.${row.key}`} className={row.differs ? "differs" : ""}>
                <td className="muted">{row.section}</td>
                <th>{row.key}</th>
                {row.cells.map((cell, i) => (
                  <td key={i} className="mono">
                    {cell}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
