import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { get, type Experiment, type RunKeys, type RunsTable } from "../api";
import {
  Empty,
  ErrorBox,
  formatDuration,
  formatNumber,
  formatTime,
  Loading,
  Status,
  useApi,
  useParam,
  useParamsUpdate,
} from "../components/common";
import { firstPageQuery, runsState, tableQuery } from "./runsQuery";

type Row = RunsTable["rows"][number];
type Cell = string | number | null;

interface Column {
  id: string; // "name", "m.auc", "p.model", "t.team"...
  label: string;
  width: number;
  value: (row: Row) => Cell;
  render?: (row: Row) => React.ReactNode;
  numeric?: boolean;
}

const ROW_HEIGHT = 30;
function fixedColumns(experiments: Map<string, string>, several: boolean): Column[] {
  const columns: Column[] = [
    {
      id: "name",
      label: "Run",
      width: 220,
      value: (r) => r[1] || r[0],
      render: (r) => (
        <Link to={`/runs/${r[0]}`} title={r[0]}>
          {r[1] || r[0].slice(0, 12)}
        </Link>
      ),
    },
    { id: "status", label: "Status", width: 100, value: (r) => r[2], render: (r) => <Status value={r[2]} /> },
    { id: "start_time", label: "Started", width: 160, value: (r) => r[3], render: (r) => formatTime(r[3]) },
    {
      id: "duration",
      label: "Duration",
      width: 90,
      numeric: true,
      value: (r) => (r[4] ? r[4] - r[3] : null),
      render: (r) => formatDuration(r[3], r[4]),
    },
    { id: "user", label: "User", width: 110, value: (r) => r[5] },
  ];
  if (several)
    columns.splice(1, 0, {
      id: "experiment",
      label: "Experiment",
      width: 130,
      value: (r) => experiments.get(r[6]) ?? r[6],
    });
  return columns;
}

/** The keys the rows have, in each of params, metrics and tags, sorted. */
function rowKeys(table: RunsTable): RunKeys {
  const found = { params: new Set<string>(), metrics: new Set<string>(), tags: new Set<string>() };
  for (const row of table.rows) {
    for (const key in row[8]) found.params.add(key);
    for (const key in row[9]) found.metrics.add(key);
    for (const key in row[10]) found.tags.add(key);
  }
  const sorted = (keys: Set<string>) => [...keys].sort();
  return { params: sorted(found.params), metrics: sorted(found.metrics), tags: sorted(found.tags) };
}

function dataColumns(chosen: string[]): Column[] {
  const columns: Column[] = [];
  for (const id of chosen) {
    const kind = id.slice(0, 1);
    const key = id.slice(2);
    if (id[1] !== ".") continue;
    if (kind === "m")
      columns.push({
        id,
        label: key,
        width: 110,
        numeric: true,
        value: (r) => r[9]?.[key] ?? null,
        render: (r) => formatNumber(r[9]?.[key] ?? null),
      });
    else if (kind === "p") columns.push({ id, label: key, width: 120, value: (r) => r[8]?.[key] ?? null });
    else if (kind === "t") columns.push({ id, label: key, width: 120, value: (r) => r[10]?.[key] ?? null });
  }
  return columns;
}

function defaultColumns(keys: RunKeys): string[] {
  return [...keys.metrics.slice(0, 5).map((k) => `m.${k}`), ...keys.params.slice(0, 4).map((k) => `p.${k}`)];
}

function compareCells(a: Cell, b: Cell, numeric: boolean): number {
  // Missing values sort last in both directions (handled by the caller's sign).
  if (numeric || (typeof a === "number" && typeof b === "number")) return (a as number) - (b as number);
  const na = Number(a);
  const nb = Number(b);
  if (a !== "" && b !== "" && !Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
  return String(a).localeCompare(String(b));
}

export default function Runs() {
  const [experimentParam] = useParam("e");
  const [filter, setFilter] = useParam("filter");
  const [sort] = useParam("sort", "start_time");
  const update = useParamsUpdate();
  const [dir, setDir] = useParam("dir", "desc");
  const [cols, setCols] = useParam("cols");
  const [view, setView] = useParam("view", "active");
  const [draft, setDraft] = useState(filter);
  useEffect(() => setDraft(filter), [filter]);
  const experimentIds = experimentParam.split(",").filter(Boolean);
  const [params] = useSearchParams();

  const experiments = useApi(
    (signal) => get<{ experiments: Experiment[] }>("/api/v1/experiments", { view: "all" }, signal),
    [],
  );
  const ids = experimentIds.length
    ? experimentIds
    : (experiments.data?.experiments.filter((e) => e.lifecycle_stage === "active").map((e) => e.experiment_id) ?? []);
  const state = runsState(params);
  const query = tableQuery(state, ids);
  const key = [ids.join(","), filter, view, Boolean(query.tags)];
  // A first page in the current order draws at once; the whole table (sorted and
  // filtered here, in the browser) follows and replaces it.
  const first = useApi(
    (signal) =>
      ids.length
        ? get<RunsTable>("/api/v1/ui/runs", firstPageQuery(state, ids), signal)
        : Promise.resolve(undefined as unknown as RunsTable),
    key,
  );
  const firstDone = !first.loading;
  const full = useApi(
    (signal) =>
      !ids.length
        ? Promise.resolve(undefined as unknown as RunsTable)
        : !firstDone
          ? new Promise<RunsTable>(() => {}) // waits for the first page: it must not compete with it
          : first.data && !first.data.truncated
            ? Promise.resolve(first.data)
            : get<RunsTable>("/api/v1/ui/runs", query, signal),
    [...key, firstDone],
  );
  const table = {
    data: full.loading || full.data === undefined ? (first.loading ? undefined : first.data) : full.data,
    error: first.error ?? full.error,
    loading: first.loading || full.loading,
  };

  const names = useMemo(
    () => new Map((experiments.data?.experiments ?? []).map((e) => [e.experiment_id, e.name])),
    [experiments.data],
  );
  const title =
    experimentIds.length === 1 ? (names.get(experimentIds[0]) ?? `experiment ${experimentIds[0]}`) : "Runs";

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setFilter(draft.trim());
  };

  return (
    <section className="runs-view">
      <div className="toolbar">
        <h1>{title}</h1>
        <form onSubmit={submit} className="filter">
          <input
            type="search"
            aria-label="Filter runs"
            className="mono"
            placeholder="metrics.auc > 0.9 and params.model = 'rf'"
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
          />
          <button type="submit">Search</button>
        </form>
        <select aria-label="Which runs" value={view} onChange={(e) => setView(e.target.value)}>
          <option value="active">active</option>
          <option value="deleted">deleted</option>
          <option value="all">all</option>
        </select>
      </div>
      {table.error ? <ErrorBox error={table.error} /> : null}
      {experiments.data && ids.length === 0 ? (
        <Empty title="No experiments yet">
          <p>
            Log a run: <code>loopline.start_run()</code>.
          </p>
        </Empty>
      ) : table.data === undefined && !table.error ? (
        <Loading what="runs" />
      ) : table.data ? (
        <RunGrid
          table={table.data}
          chosen={cols ? cols.split(",").filter(Boolean) : undefined}
          experimentIds={ids}
          view={view}
          setChosen={(next) => setCols(next.join(","))}
          fixed={fixedColumns(names, ids.length > 1)}
          sort={sort}
          dir={dir}
          onSort={(id) => {
            if (id === sort) setDir(dir === "asc" ? "desc" : "asc");
            else update({ sort: id, dir: "" });
          }}
          stale={table.loading}
        />
      ) : null}
    </section>
  );
}

function RunGrid(props: {
  table: RunsTable;
  chosen: string[] | undefined;
  experimentIds: string[];
  view: string;
  setChosen: (cols: string[]) => void;
  fixed: Column[];
  sort: string;
  dir: string;
  onSort: (id: string) => void;
  stale: boolean;
}) {
  const { table, fixed, sort, dir } = props;
  const navigate = useNavigate();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const keys = useMemo(() => rowKeys(table), [table]);
  const chosen = props.chosen ?? defaultColumns(keys);
  const chosenText = chosen.join(",");
  const columns = useMemo(
    () => [...fixed, ...dataColumns(chosenText.split(",").filter(Boolean))],
    [fixed, chosenText],
  );
  const rows = useMemo(() => {
    const column = columns.find((c) => c.id === sort);
    if (!column) return table.rows;
    const sign = dir === "asc" ? 1 : -1;
    const keyed = table.rows.map((row) => [column.value(row), row] as const);
    keyed.sort(([a], [b]) => {
      const missingA = a === null || a === undefined || a === "";
      const missingB = b === null || b === undefined || b === "";
      if (missingA || missingB) return Number(missingA) - Number(missingB);
      return sign * compareCells(a, b, Boolean(column.numeric));
    });
    return keyed.map(([, row]) => row);
  }, [table.rows, columns, sort, dir]);

  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 20,
  });
  const template = `36px ${columns.map((c) => `${c.width}px`).join(" ")}`;
  const width = 36 + columns.reduce((sum, c) => sum + c.width, 0);
  const toggle = (id: string, on: boolean) => {
    const next = new Set(selected);
    if (on) next.add(id);
    else next.delete(id);
    setSelected(next);
  };

  return (
    <>
      <div className="toolbar small">
        <span className="muted" data-testid="run-count">
          {table.total.toLocaleString()} runs
          {rows.length < table.total ? ` (${rows.length.toLocaleString()} loaded${props.stale ? ", loading the rest…" : "; narrow the filter"})` : ""}
          {props.stale && rows.length === table.total ? " · updating…" : ""}
        </span>
        <ColumnChooser
          keys={keys}
          experimentIds={props.experimentIds}
          view={props.view}
          chosen={chosen}
          setChosen={props.setChosen}
        />
        <button
          className="primary"
          disabled={selected.size < 1}
          onClick={() => navigate(`/compare?runs=${[...selected].join(",")}`)}
        >
          Compare {selected.size || ""} selected
        </button>
      </div>
      <div className="vgrid" ref={scroller} data-testid="runs-grid">
        <div className="vrow vhead" style={{ gridTemplateColumns: template, width }}>
          <div />
          {columns.map((c) => (
            <button
              key={c.id}
              className={`vcell sortable ${c.numeric ? "num" : ""}`}
              title={c.id}
              onClick={() => props.onSort(c.id)}
              aria-sort={sort === c.id ? (dir === "asc" ? "ascending" : "descending") : "none"}
            >
              {c.label}
              {sort === c.id ? (dir === "asc" ? " ▲" : " ▼") : ""}
            </button>
          ))}
        </div>
        {rows.length === 0 ? (
          <div className="muted pad">No run matches.</div>
        ) : (
          <div style={{ height: virtual.getTotalSize(), width, position: "relative" }}>
            {virtual.getVirtualItems().map((item) => {
              const row = rows[item.index];
              return (
                <div
                  key={row[0]}
                  className="vrow"
                  data-run-id={row[0]}
                  style={{
                    gridTemplateColumns: template,
                    width,
                    height: ROW_HEIGHT,
                    transform: `translateY(${item.start}px)`,
                  }}
                >
                  <div className="vcell">
                    <input
                      type="checkbox"
                      aria-label={`select run ${row[1] || row[0]}`}
                      checked={selected.has(row[0])}
                      onChange={(e) => toggle(row[0], e.target.checked)}
                    />
                  </div>
                  {columns.map((c) => (
                    <div key={c.id} className={`vcell ${c.numeric ? "num" : ""}`} data-col={c.id}>
                      {c.render ? c.render(row) : (c.value(row) ?? "")}
                    </div>
                  ))}
                </div>
              );
            })}
          </div>
        )}
      </div>
    </>
  );
}

function ColumnChooser(props: {
  keys: RunKeys;
  experimentIds: string[];
  view: string;
  chosen: string[];
  setChosen: (c: string[]) => void;
}) {
  const { chosen } = props;
  const [needle, setNeedle] = useState("");
  const [open, setOpen] = useState(false);
  // The table's rows carry no tag values unless a tag column is shown: every key of
  // the experiments is asked for when the chooser opens.
  const all = useApi(
    (signal) =>
      open
        ? get<RunKeys>("/api/v1/ui/run-keys", { experiment_ids: props.experimentIds.join(","), view: props.view }, signal)
        : Promise.resolve(undefined),
    [open, props.experimentIds.join(","), props.view],
  );
  const merge = (mine: string[], theirs: string[] | undefined) => [...new Set([...mine, ...(theirs ?? [])])].sort();
  const set = new Set(chosen);
  const toggle = (id: string) =>
    props.setChosen(set.has(id) ? chosen.filter((c) => c !== id) : [...chosen, id]);
  const groups: [string, string, string[]][] = [
    ["Metrics", "m", merge(props.keys.metrics, all.data?.metrics)],
    ["Params", "p", merge(props.keys.params, all.data?.params)],
    ["Tags", "t", merge(props.keys.tags, all.data?.tags)],
  ];
  return (
    <details className="chooser" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>Columns ({chosen.length})</summary>
      <div className="chooser-body">
        <input
          type="search"
          placeholder="find a column"
          aria-label="Find a column"
          value={needle}
          onChange={(e) => setNeedle(e.target.value)}
        />
        {groups.map(([label, kind, keys]) => (
          <fieldset key={kind}>
            <legend>{label}</legend>
            {keys
              .filter((k) => k.toLowerCase().includes(needle.toLowerCase()))
              .map((key) => (
                <label key={key}>
                  <input
                    type="checkbox"
                    checked={set.has(`${kind}.${key}`)}
                    onChange={() => toggle(`${kind}.${key}`)}
                  />
                  {key}
                </label>
              ))}
            {keys.length === 0 ? <span className="muted">none</span> : null}
          </fieldset>
        ))}
      </div>
    </details>
  );
}
