import { Link, Route, Routes, useNavigate, useParams } from "react-router-dom";
import { get } from "../api";
import {
  Empty,
  formatBytes,
  formatNumber,
  formatTime,
  RunLink,
  Show,
  Tabs,
  useApi,
  useParam,
  useTab,
} from "../components/common";

interface Dataset {
  name: string;
  versions: number;
  latest: number | null;
  total_size: number | null;
  created_at: number;
  updated_at: number;
}

interface Version {
  name: string;
  version: number;
  ref: string;
  digest: string;
  kind: string;
  file_count: number;
  total_size: number;
  message: string;
  source: string;
  created_at: number;
  created_by: string;
  tags: string[];
}

interface Entry {
  path: string;
  size: number;
  digest: string;
  executable: boolean;
}

type ColumnProfile = {
  type: string;
  kind: string;
  missing: number;
  min?: number | string | null;
  max?: number | string | null;
  mean?: number | null;
  std?: number | null;
  quantiles?: Record<string, number | null>;
  histogram?: { edges: number[]; counts: number[] };
  distinct?: number;
  top?: [string, number][];
  true?: number;
  false?: number;
};

const datasetPath = (name: string) => `/data/${encodeURIComponent(name)}`;

export default function Data() {
  return (
    <Routes>
      <Route index element={<Datasets />} />
      <Route path=":name" element={<Versions />} />
      <Route path=":name/diff" element={<Diff />} />
      <Route path=":name/:version" element={<VersionPage />} />
    </Routes>
  );
}

function Datasets() {
  const loaded = useApi((signal) => get<{ datasets: Dataset[] }>("/api/v1/data/datasets", undefined, signal), []);
  return (
    <section>
      <div className="toolbar">
        <h1>Datasets</h1>
      </div>
      <Show loaded={loaded}>
        {({ datasets }) =>
          datasets.length === 0 ? (
            <Empty title="No datasets yet">
              <p>
                Version one: <code>loopline data add PATH --name NAME</code>.
              </p>
            </Empty>
          ) : (
            <table className="grid" data-testid="datasets">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Versions</th>
                  <th>Latest</th>
                  <th>Size (latest)</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {datasets.map((d) => (
                  <tr key={d.name}>
                    <td>
                      <Link to={datasetPath(d.name)}>{d.name}</Link>
                    </td>
                    <td>{d.versions}</td>
                    <td>
                      {d.latest ? <Link to={`${datasetPath(d.name)}/${d.latest}`}>@{d.latest}</Link> : null}
                    </td>
                    <td>{formatBytes(d.total_size)}</td>
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

function Versions() {
  const { name = "" } = useParams();
  const navigate = useNavigate();
  const [a, setA] = useParam("a");
  const [b, setB] = useParam("b");
  const loaded = useApi(
    (signal) => get<{ versions: Version[] }>("/api/v1/data/versions", { name }, signal),
    [name],
  );
  return (
    <section>
      <div className="toolbar">
        <h1>
          <Link to="/data">Datasets</Link> / {name}
        </h1>
        <span className="spacer" />
        <button
          disabled={!a || !b || a === b}
          onClick={() => navigate(`${datasetPath(name)}/diff?a=${a}&b=${b}`)}
        >
          Diff {a ? `@${a}` : "A"} → {b ? `@${b}` : "B"}
        </button>
      </div>
      <Show loaded={loaded}>
        {({ versions }) => (
          <table className="grid" data-testid="versions">
            <thead>
              <tr>
                <th title="diff from">A</th>
                <th title="diff to">B</th>
                <th>Version</th>
                <th>Tags</th>
                <th>Message</th>
                <th>Files</th>
                <th>Size</th>
                <th>Digest</th>
                <th>Created</th>
                <th>By</th>
              </tr>
            </thead>
            <tbody>
              {[...versions].reverse().map((v) => (
                <tr key={v.version}>
                  <td>
                    <input
                      type="radio"
                      name="a"
                      aria-label={`diff from ${v.version}`}
                      checked={a === String(v.version)}
                      onChange={() => setA(String(v.version))}
                    />
                  </td>
                  <td>
                    <input
                      type="radio"
                      name="b"
                      aria-label={`diff to ${v.version}`}
                      checked={b === String(v.version)}
                      onChange={() => setB(String(v.version))}
                    />
                  </td>
                  <td>
                    <Link to={`${datasetPath(name)}/${v.version}`}>@{v.version}</Link>
                  </td>
                  <td>
                    {v.tags.map((t) => (
                      <span className="badge" key={t}>
                        {t}
                      </span>
                    ))}
                  </td>
                  <td>{v.message}</td>
                  <td>{v.file_count}</td>
                  <td>{formatBytes(v.total_size)}</td>
                  <td className="mono">{v.digest.slice(0, 18)}</td>
                  <td>{formatTime(v.created_at)}</td>
                  <td>{v.created_by}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}

const VERSION_TABS: [string, string][] = [
  ["files", "Files"],
  ["schema", "Schema"],
  ["profile", "Profile"],
  ["lineage", "Lineage"],
];

function VersionPage() {
  const { name = "", version = "" } = useParams();
  const ref = `${name}@${version}`;
  const tab = useTab(VERSION_TABS);
  const loaded = useApi(
    (signal) =>
      get<{ version: Version; manifest: { entries: Entry[] } }>(
        "/api/v1/data/version",
        { ref, manifest: true },
        signal,
      ),
    [ref],
  );
  return (
    <section>
      <div className="toolbar">
        <h1>
          <Link to="/data">Datasets</Link> / <Link to={datasetPath(name)}>{name}</Link> / @{version}
        </h1>
      </div>
      <Show loaded={loaded}>
        {({ version: v, manifest }) => (
          <>
            <p className="muted">
              {v.message} · {v.file_count} files · {formatBytes(v.total_size)} · {formatTime(v.created_at)} by{" "}
              {v.created_by} · <span className="mono">{v.digest}</span>
            </p>
            <Tabs tabs={VERSION_TABS} />
            {tab === "files" ? <Files entries={manifest.entries} /> : null}
            {tab === "schema" || tab === "profile" ? <Profile refName={ref} schemaOnly={tab === "schema"} /> : null}
            {tab === "lineage" ? <DataLineage refName={ref} /> : null}
          </>
        )}
      </Show>
    </section>
  );
}

function Files({ entries }: { entries: Entry[] }) {
  const [needle, setNeedle] = useParam("path");
  const shown = entries.filter((e) => e.path.includes(needle)).slice(0, 2000);
  return (
    <>
      <input
        type="search"
        aria-label="Filter files"
        placeholder="filter paths"
        value={needle}
        onChange={(e) => setNeedle(e.target.value)}
      />
      <table className="grid" data-testid="files">
        <thead>
          <tr>
            <th>Path</th>
            <th>Size</th>
            <th>Digest</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((e) => (
            <tr key={e.path}>
              <td className="mono">
                {e.path}
                {e.executable ? " *" : ""}
              </td>
              <td>{formatBytes(e.size)}</td>
              <td className="mono">{e.digest.slice(0, 18)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown.length < entries.length ? (
        <p className="muted">
          {shown.length} of {entries.length} files shown.
        </p>
      ) : null}
    </>
  );
}

interface ProfileAnswer {
  schema: Record<string, { format?: string; rows?: number; columns: { name: string; type: string }[] }>;
  profile: Record<string, { rows: number; columns: Record<string, ColumnProfile> }>;
}

function Profile({ refName, schemaOnly }: { refName: string; schemaOnly: boolean }) {
  const loaded = useApi(
    (signal) => get<ProfileAnswer>("/api/v1/ui/data/profile", { ref: refName }, signal),
    [refName],
  );
  return (
    <Show loaded={loaded}>
      {({ schema, profile }) => {
        const files = Object.keys(schema).sort();
        if (files.length === 0)
          return <Empty title="No tabular files">Schemas and profiles are kept for CSV, TSV and Parquet files.</Empty>;
        return (
          <>
            {files.map((file) => (
              <div className="card" key={file}>
                <h3 className="mono">
                  {file} <span className="muted">{formatNumber(schema[file].rows ?? profile[file]?.rows)} rows</span>
                </h3>
                {schemaOnly ? (
                  <SchemaTable columns={schema[file].columns} />
                ) : (
                  <ProfileTable profile={profile[file]} />
                )}
              </div>
            ))}
          </>
        );
      }}
    </Show>
  );
}

function SchemaTable({ columns }: { columns: { name: string; type: string }[] }) {
  return (
    <table className="grid" data-testid="schema">
      <thead>
        <tr>
          <th>Column</th>
          <th>Type</th>
        </tr>
      </thead>
      <tbody>
        {columns.map((c) => (
          <tr key={c.name}>
            <td>{c.name}</td>
            <td className="mono">{c.type}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Histogram({ counts }: { counts: number[] }) {
  const top = Math.max(1, ...counts);
  return (
    <span className="histogram" aria-label="histogram">
      {counts.map((c, i) => (
        <span key={i} style={{ height: `${(100 * c) / top}%` }} title={String(c)} />
      ))}
    </span>
  );
}

function ProfileTable({ profile }: { profile?: { columns: Record<string, ColumnProfile> } }) {
  if (!profile) return <p className="muted">No profile was recorded for this file.</p>;
  return (
    <table className="grid" data-testid="profile">
      <thead>
        <tr>
          <th>Column</th>
          <th>Type</th>
          <th>Missing</th>
          <th>Min</th>
          <th>Median</th>
          <th>Max</th>
          <th>Mean ± std</th>
          <th>Distribution</th>
        </tr>
      </thead>
      <tbody>
        {Object.entries(profile.columns).map(([name, c]) => (
          <tr key={name}>
            <td>{name}</td>
            <td className="mono">{c.type}</td>
            <td>{(100 * c.missing).toFixed(1)}%</td>
            <td>{typeof c.min === "number" ? formatNumber(c.min) : (c.min ?? "")}</td>
            <td>{formatNumber(c.quantiles?.["0.5"])}</td>
            <td>{typeof c.max === "number" ? formatNumber(c.max) : (c.max ?? "")}</td>
            <td>{c.mean !== undefined && c.mean !== null ? `${formatNumber(c.mean)} ± ${formatNumber(c.std)}` : ""}</td>
            <td>
              {c.histogram ? <Histogram counts={c.histogram.counts} /> : null}
              {c.top ? (
                <span className="muted">
                  {c.distinct} distinct: {c.top.slice(0, 5).map(([v, n]) => `${v} (${n})`).join(", ")}
                </span>
              ) : null}
              {c.kind === "boolean" ? <span className="muted">true {c.true}, false {c.false}</span> : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface LineageAnswer {
  lineage: {
    runs: { run_id: string; context: string; created_at: number }[];
    models: { model: string; version: number }[];
  };
}

function DataLineage({ refName }: { refName: string }) {
  const loaded = useApi((signal) => get<LineageAnswer>("/api/v1/ui/data/lineage", { ref: refName }, signal), [refName]);
  return (
    <Show loaded={loaded}>
      {({ lineage }) => (
        <div className="lineage">
          <div className="card">
            <h3>This version</h3>
            <p className="mono">{refName}</p>
          </div>
          <div className="arrow">→</div>
          <div className="card">
            <h3>Runs that read it</h3>
            {lineage.runs.length ? (
              <ul className="plain">
                {lineage.runs.map((r) => (
                  <li key={r.run_id}>
                    <RunLink id={r.run_id} /> <span className="muted">{r.context}</span>
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">No run recorded it as an input.</p>
            )}
          </div>
          <div className="arrow">→</div>
          <div className="card">
            <h3>Models</h3>
            {lineage.models.length ? (
              <ul className="plain">
                {lineage.models.map((m) => (
                  <li key={`${m.model}@${m.version}`}>
                    <Link to={`/models/version?name=${encodeURIComponent(m.model)}&version=${m.version}`}>
                      {m.model}@{m.version}
                    </Link>
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">No registered model came from it.</p>
            )}
          </div>
        </div>
      )}
    </Show>
  );
}

interface DiffAnswer {
  diff: {
    a: string;
    b: string;
    changes: { path: string; change: string; old_size: number | null; new_size: number | null }[];
    tables: {
      path: string;
      old_rows: number | null;
      new_rows: number | null;
      added_columns: string[];
      removed_columns: string[];
      retyped_columns: [string, string, string][];
    }[];
    unchanged: number;
  };
}

function Diff() {
  const { name = "" } = useParams();
  const [a] = useParam("a");
  const [b] = useParam("b");
  const loaded = useApi(
    (signal) => get<DiffAnswer>("/api/v1/ui/data/diff", { a: `${name}@${a}`, b: `${name}@${b}` }, signal),
    [name, a, b],
  );
  return (
    <section>
      <div className="toolbar">
        <h1>
          <Link to="/data">Datasets</Link> / <Link to={datasetPath(name)}>{name}</Link> / diff @{a} → @{b}
        </h1>
      </div>
      <Show loaded={loaded}>
        {({ diff }) => (
          <>
            <p className="muted">
              {diff.changes.length} files changed, {diff.unchanged} unchanged.
            </p>
            {diff.changes.length ? (
              <table className="grid" data-testid="diff">
                <thead>
                  <tr>
                    <th>Change</th>
                    <th>Path</th>
                    <th>Size before</th>
                    <th>Size after</th>
                  </tr>
                </thead>
                <tbody>
                  {diff.changes.map((c) => (
                    <tr key={c.path} className={`change-${c.change}`}>
                      <td>{c.change}</td>
                      <td className="mono">{c.path}</td>
                      <td>{formatBytes(c.old_size)}</td>
                      <td>{formatBytes(c.new_size)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : null}
            {diff.tables.map((t) => (
              <div className="card" key={t.path}>
                <h3 className="mono">{t.path}</h3>
                <p>
                  rows: {formatNumber(t.old_rows)} → {formatNumber(t.new_rows)}
                </p>
                {t.added_columns.length ? <p>added columns: {t.added_columns.join(", ")}</p> : null}
                {t.removed_columns.length ? <p>removed columns: {t.removed_columns.join(", ")}</p> : null}
                {t.retyped_columns.map(([c, from, to]) => (
                  <p key={c}>
                    {c}: {from} → {to}
                  </p>
                ))}
              </div>
            ))}
          </>
        )}
      </Show>
    </section>
  );
}
