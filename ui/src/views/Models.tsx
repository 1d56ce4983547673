import { useState, type FormEvent } from "react";
import { Link, Route, Routes } from "react-router-dom";
import { ApiError, get, post, put } from "../api";
import {
  Empty,
  ErrorBox,
  formatTime,
  KeyValues,
  RunLink,
  Show,
  Tabs,
  useApi,
  useParam,
  useTab,
} from "../components/common";

interface RegisteredModel {
  name: string;
  description: string;
  require_approval: boolean;
  tags: Record<string, string>;
  aliases: Record<string, number>;
  latest_version: number | null;
  updated_at: number;
}

interface ModelVersion {
  name: string;
  version: number;
  source: string;
  run_id: string | null;
  flavor: string;
  signature: unknown;
  status: string;
  review_status: string;
  description: string;
  tags: Record<string, string>;
  aliases: string[];
  created_at: number;
  created_by: string;
}

interface Alias {
  alias: string;
  version: number;
  protected: boolean;
  updated_at: number;
  updated_by: string;
}

interface AliasChange {
  alias: string;
  from_version: number | null;
  to_version: number | null;
  actor: string;
  reason: string;
  created_at: number;
}

const modelPath = (name: string) => `/models/model?name=${encodeURIComponent(name)}`;
const versionPath = (name: string, version: number) =>
  `/models/version?name=${encodeURIComponent(name)}&version=${version}`;

export default function Models() {
  return (
    <Routes>
      <Route index element={<ModelList />} />
      <Route path="model" element={<ModelPage />} />
      <Route path="version" element={<VersionPage />} />
    </Routes>
  );
}

function ModelList() {
  const [query, setQuery] = useParam("q");
  const loaded = useApi(
    (signal) =>
      get<{ models: RegisteredModel[] }>(
        "/api/v1/registry/models",
        { max_results: 1000, filter: query ? `name LIKE '%${query.replaceAll("'", "''")}%'` : undefined },
        signal,
      ),
    [query],
  );
  return (
    <section>
      <div className="toolbar">
        <h1>Registered models</h1>
        <input
          type="search"
          aria-label="Search models"
          placeholder="search by name"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
      </div>
      <Show loaded={loaded}>
        {({ models }) =>
          models.length === 0 ? (
            <Empty title={query ? `No model matches “${query}”` : "No registered models yet"}>
              <p>
                Register one: <code>loopline models register runs:/RUN_ID/model --name NAME</code>.
              </p>
            </Empty>
          ) : (
            <table className="grid" data-testid="models">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Latest</th>
                  <th>Aliases</th>
                  <th>Approval</th>
                  <th>Description</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {models.map((m) => (
                  <tr key={m.name}>
                    <td>
                      <Link to={modelPath(m.name)}>{m.name}</Link>
                    </td>
                    <td>{m.latest_version ? <Link to={versionPath(m.name, m.latest_version)}>v{m.latest_version}</Link> : null}</td>
                    <td>
                      {Object.entries(m.aliases).map(([alias, v]) => (
                        <span className="badge" key={alias}>
                          @{alias} → v{v}
                        </span>
                      ))}
                    </td>
                    <td>{m.require_approval ? "required" : ""}</td>
                    <td>{m.description}</td>
                    <td>{formatTime(m.updated_at)}</td>
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

const MODEL_TABS: [string, string][] = [
  ["versions", "Versions"],
  ["aliases", "Aliases"],
  ["history", "Alias history"],
];

function ModelPage() {
  const [name] = useParam("name");
  const tab = useTab(MODEL_TABS);
  const [tick, setTick] = useState(0);
  const refresh = () => setTick((t) => t + 1);
  const loaded = useApi(
    async (signal) => {
      const [model, versions, aliases] = await Promise.all([
        get<{ model: RegisteredModel }>("/api/v1/registry/model", { name }, signal),
        get<{ versions: ModelVersion[] }>(
          "/api/v1/registry/versions",
          { name, max_results: 1000, order_by: ["version_number DESC"] },
          signal,
        ),
        get<{ aliases: Alias[] }>("/api/v1/registry/aliases", { name }, signal),
      ]);
      return { model: model.model, versions: versions.versions, aliases: aliases.aliases };
    },
    [name, tick],
  );
  return (
    <section>
      <div className="toolbar">
        <h1>
          <Link to="/models">Models</Link> / {name}
        </h1>
      </div>
      <Show loaded={loaded}>
        {({ model, versions, aliases }) => (
          <>
            {model.description ? <p>{model.description}</p> : null}
            <Tabs tabs={MODEL_TABS} />
            {tab === "versions" ? <VersionTable versions={versions} onChange={refresh} /> : null}
            {tab === "aliases" ? (
              <AliasPanel name={name} aliases={aliases} versions={versions} onChange={refresh} />
            ) : null}
            {tab === "history" ? <AliasHistory name={name} tick={tick} /> : null}
          </>
        )}
      </Show>
    </section>
  );
}

function VersionTable({ versions, onChange }: { versions: ModelVersion[]; onChange: () => void }) {
  const [error, setError] = useState<Error | null>(null);
  const review = async (v: ModelVersion, decision: string) => {
    setError(null);
    try {
      await post("/api/v1/registry/reviews", { decision, comment: "from the web UI" }, { name: v.name, version: v.version });
      onChange();
    } catch (exc) {
      setError(exc as Error);
    }
  };
  return (
    <>
      {error ? <ErrorBox error={error} /> : null}
      <table className="grid" data-testid="model-versions">
        <thead>
          <tr>
            <th>Version</th>
            <th>Aliases</th>
            <th>Review</th>
            <th>Run</th>
            <th>Flavor</th>
            <th>Created</th>
            <th>By</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.version} data-version={v.version}>
              <td>
                <Link to={versionPath(v.name, v.version)}>v{v.version}</Link>
              </td>
              <td>
                {v.aliases.map((a) => (
                  <span className="badge" key={a}>
                    @{a}
                  </span>
                ))}
              </td>
              <td>
                <span className={`badge review-${v.review_status}`}>{v.review_status}</span>
              </td>
              <td>{v.run_id ? <RunLink id={v.run_id} /> : null}</td>
              <td>{v.flavor}</td>
              <td>{formatTime(v.created_at)}</td>
              <td>{v.created_by}</td>
              <td className="actions">
                <button onClick={() => review(v, "approved")} disabled={v.review_status === "approved"}>
                  Approve
                </button>
                <button onClick={() => review(v, "rejected")} disabled={v.review_status === "rejected"}>
                  Reject
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function AliasPanel(props: { name: string; aliases: Alias[]; versions: ModelVersion[]; onChange: () => void }) {
  const { name, aliases, versions } = props;
  const [alias, setAlias] = useState(aliases[0]?.alias ?? "champion");
  const [version, setVersion] = useState(String(versions[0]?.version ?? ""));
  const [reason, setReason] = useState("");
  const [error, setError] = useState<Error | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    try {
      await put("/api/v1/registry/aliases", { version: Number(version), reason }, { name, alias: alias.trim() });
      setDone(`@${alias.trim()} now points at v${version}`);
      props.onChange();
    } catch (exc) {
      setError(exc instanceof ApiError ? exc : new Error(String(exc)));
    }
  };
  return (
    <div className="columns">
      <div className="card">
        <h3>Aliases</h3>
        {aliases.length ? (
          <table className="grid" data-testid="aliases">
            <thead>
              <tr>
                <th>Alias</th>
                <th>Version</th>
                <th>Protected</th>
                <th>Moved</th>
                <th>By</th>
              </tr>
            </thead>
            <tbody>
              {aliases.map((a) => (
                <tr key={a.alias} data-alias={a.alias}>
                  <td>@{a.alias}</td>
                  <td>
                    <Link to={versionPath(name, a.version)}>v{a.version}</Link>
                  </td>
                  <td>{a.protected ? "yes (approved versions only)" : ""}</td>
                  <td>{formatTime(a.updated_at)}</td>
                  <td>{a.updated_by}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">No aliases yet.</p>
        )}
      </div>
      <form className="card" onSubmit={submit} aria-label="Move alias">
        <h3>Move an alias</h3>
        <label>
          Alias
          <input
            aria-label="Alias name"
            list="alias-names"
            value={alias}
            onChange={(e) => setAlias(e.target.value)}
            required
          />
          <datalist id="alias-names">
            {aliases.map((a) => (
              <option key={a.alias} value={a.alias} />
            ))}
          </datalist>
        </label>
        <label>
          to version
          <select aria-label="Target version" value={version} onChange={(e) => setVersion(e.target.value)}>
            {versions.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version} ({v.review_status})
              </option>
            ))}
          </select>
        </label>
        <label>
          Reason
          <input aria-label="Reason" value={reason} onChange={(e) => setReason(e.target.value)} />
        </label>
        <button type="submit" className="primary">
          Move alias
        </button>
        {done ? (
          <p className="ok" role="status">
            {done}
          </p>
        ) : null}
        {error ? <ErrorBox error={error} /> : null}
      </form>
    </div>
  );
}

function AliasHistory({ name, tick }: { name: string; tick: number }) {
  const loaded = useApi(
    (signal) => get<{ history: AliasChange[] }>("/api/v1/registry/aliases/history", { name }, signal),
    [name, tick],
  );
  return (
    <Show loaded={loaded}>
      {({ history }) =>
        history.length === 0 ? (
          <p className="muted">No alias has moved yet.</p>
        ) : (
          <table className="grid" data-testid="alias-history">
            <thead>
              <tr>
                <th>When</th>
                <th>Alias</th>
                <th>From</th>
                <th>To</th>
                <th>By</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              {[...history].reverse().map((h, i) => (
                <tr key={i}>
                  <td>{formatTime(h.created_at)}</td>
                  <td>@{h.alias}</td>
                  <td>{h.from_version === null ? "(created)" : `v${h.from_version}`}</td>
                  <td>{h.to_version === null ? "(deleted)" : `v${h.to_version}`}</td>
                  <td>{h.actor}</td>
                  <td>{h.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      }
    </Show>
  );
}

interface VersionLineage {
  run_id: string | null;
  run_name: string | null;
  run_status: string | null;
  datasets: { ref: string; context: string; via: string }[];
  pipeline_runs: string[];
  downstream: { type: string; id: string; relation: string }[];
}

interface Review {
  decision: string;
  reviewer: string;
  comment: string;
  created_at: number;
}

function VersionPage() {
  const [name] = useParam("name");
  const [version] = useParam("version");
  const loaded = useApi(
    async (signal) => {
      const [v, lineage, reviews] = await Promise.all([
        get<{ version: ModelVersion }>("/api/v1/registry/version", { name, version }, signal),
        get<{ lineage: VersionLineage }>("/api/v1/registry/lineage", { ref: `${name}@${version}` }, signal),
        get<{ reviews: Review[] }>("/api/v1/registry/reviews", { name, version }, signal),
      ]);
      return { version: v.version, lineage: lineage.lineage, reviews: reviews.reviews };
    },
    [name, version],
  );
  return (
    <section>
      <div className="toolbar">
        <h1>
          <Link to="/models">Models</Link> / <Link to={modelPath(name)}>{name}</Link> / v{version}
        </h1>
      </div>
      <Show loaded={loaded}>
        {({ version: v, lineage, reviews }) => (
          <>
            <LineageGraph name={name} version={v} lineage={lineage} />
            <div className="columns">
              <div className="card">
                <h3>Version</h3>
                <KeyValues
                  values={{
                    source: v.source,
                    flavor: v.flavor,
                    status: v.status,
                    review: v.review_status,
                    aliases: v.aliases.map((a) => `@${a}`).join(" "),
                    created: formatTime(v.created_at),
                    "created by": v.created_by,
                    description: v.description,
                  }}
                />
                <h3>Tags</h3>
                <KeyValues values={v.tags} empty="No tags." />
              </div>
              <div className="card">
                <h3>Signature</h3>
                {v.signature ? <pre className="code">{JSON.stringify(v.signature, null, 2)}</pre> : <p className="muted">none</p>}
              </div>
              <div className="card">
                <h3>Reviews</h3>
                {reviews.length ? (
                  <ul className="plain">
                    {reviews.map((r, i) => (
                      <li key={i}>
                        <span className={`badge review-${r.decision}`}>{r.decision}</span> {r.reviewer}{" "}
                        <span className="muted">{formatTime(r.created_at)}</span> {r.comment}
                      </li>
                    ))}
                  </ul>
                ) : (
                  <p className="muted">No reviews.</p>
                )}
              </div>
            </div>
          </>
        )}
      </Show>
    </section>
  );
}

/** Data → run → model version → deployments, as columns of linked boxes. */
function LineageGraph({ name, version, lineage }: { name: string; version: ModelVersion; lineage: VersionLineage }) {
  return (
    <div className="lineage" data-testid="lineage-graph">
      <div className="card">
        <h3>Data</h3>
        {lineage.datasets.length ? (
          <ul className="plain">
            {lineage.datasets.map((d) => {
              const [dataset, number] = d.ref.split("@");
              return (
                <li key={d.ref}>
                  <Link to={`/data/${encodeURIComponent(dataset)}/${number}`}>{d.ref}</Link>{" "}
                  <span className="muted">{d.context}</span>
                </li>
              );
            })}
          </ul>
        ) : (
          <p className="muted">No dataset recorded.</p>
        )}
      </div>
      <div className="arrow">→</div>
      <div className="card">
        <h3>Run</h3>
        {lineage.run_id ? (
          <p>
            <RunLink id={lineage.run_id} name={lineage.run_name} />{" "}
            <span className="muted">{lineage.run_status}</span>
          </p>
        ) : (
          <p className="muted">Not made by a run.</p>
        )}
        {lineage.pipeline_runs.length ? (
          <p className="muted">pipeline runs: {lineage.pipeline_runs.join(", ")}</p>
        ) : null}
      </div>
      <div className="arrow">→</div>
      <div className="card">
        <h3>Model</h3>
        <p>
          {name}@{version.version}{" "}
          {version.aliases.map((a) => (
            <span className="badge" key={a}>
              @{a}
            </span>
          ))}
        </p>
      </div>
      <div className="arrow">→</div>
      <div className="card">
        <h3>Deployments</h3>
        {lineage.downstream.length ? (
          <ul className="plain">
            {lineage.downstream.map((d, i) => (
              <li key={i}>
                {d.type === "deployment" ? (
                  <Link to={`/deployments/${encodeURIComponent(d.id)}`}>{d.id}</Link>
                ) : (
                  `${d.type} ${d.id}`
                )}{" "}
                <span className="muted">{d.relation}</span>
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted">Not deployed.</p>
        )}
      </div>
    </div>
  );
}
