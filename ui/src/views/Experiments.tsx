import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { ApiError, get, post, type Experiment } from "../api";
import { Empty, formatTime, Show, useApi, useParam } from "../components/common";

export default function Experiments() {
  const [query, setQuery] = useParam("q");
  const [view, setView] = useParam("view", "active");
  const loaded = useApi(
    (signal) => get<{ experiments: Experiment[] }>("/api/v1/experiments", { view }, signal),
    [view],
  );
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const navigate = useNavigate();
  const needle = query.toLowerCase();

  return (
    <section>
      <div className="toolbar">
        <h1>Experiments</h1>
        <input
          type="search"
          placeholder="Search by name or description"
          aria-label="Search experiments"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <select aria-label="Which experiments" value={view} onChange={(e) => setView(e.target.value)}>
          <option value="active">active</option>
          <option value="deleted">deleted</option>
          <option value="all">all</option>
        </select>
        <button
          disabled={picked.size === 0}
          onClick={() => navigate(`/runs?e=${[...picked].join(",")}`)}
        >
          Runs of {picked.size || ""} selected
        </button>
      </div>
      <Show loaded={loaded}>
        {({ experiments }) => {
          const shown = experiments.filter(
            (e) =>
              !needle ||
              e.name.toLowerCase().includes(needle) ||
              e.description.toLowerCase().includes(needle),
          );
          if (experiments.length === 0)
            return (
              <Empty title="No experiments yet">
                <p>Create one below, or log a run: <code>loopline.set_experiment("name")</code>.</p>
              </Empty>
            );
          return (
            <table className="grid" data-testid="experiments">
              <thead>
                <tr>
                  <th />
                  <th>Name</th>
                  <th>ID</th>
                  <th>Description</th>
                  <th>Created</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((e) => (
                  <tr key={e.experiment_id}>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`select ${e.name}`}
                        checked={picked.has(e.experiment_id)}
                        onChange={(ev) => {
                          const next = new Set(picked);
                          if (ev.target.checked) next.add(e.experiment_id);
                          else next.delete(e.experiment_id);
                          setPicked(next);
                        }}
                      />
                    </td>
                    <td>
                      <Link to={`/runs?e=${e.experiment_id}`}>{e.name}</Link>
                      {e.lifecycle_stage === "deleted" ? <span className="badge">deleted</span> : null}
                    </td>
                    <td className="mono">{e.experiment_id}</td>
                    <td>{e.description}</td>
                    <td>{formatTime(e.creation_time)}</td>
                    <td>{formatTime(e.last_update_time)}</td>
                  </tr>
                ))}
                {shown.length === 0 ? (
                  <tr>
                    <td colSpan={6} className="muted">
                      No experiment matches “{query}”.
                    </td>
                  </tr>
                ) : null}
              </tbody>
            </table>
          );
        }}
      </Show>
      <CreateExperiment onCreated={loaded.reload} />
    </section>
  );
}

function CreateExperiment({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      await post("/api/v1/experiments", { name: name.trim(), description });
      setName("");
      setDescription("");
      onCreated();
    } catch (exc) {
      setError(exc instanceof ApiError ? exc.message : String(exc));
    }
  };
  return (
    <form className="card inline-form" onSubmit={submit}>
      <h3>New experiment</h3>
      <input
        aria-label="New experiment name"
        placeholder="name"
        value={name}
        onChange={(e) => setName(e.target.value)}
        required
      />
      <input
        aria-label="New experiment description"
        placeholder="description (optional)"
        value={description}
        onChange={(e) => setDescription(e.target.value)}
      />
      <button type="submit" className="primary">
        Create
      </button>
      {error ? (
        <div className="error" role="alert">
          {error}
        </div>
      ) : null}
    </form>
  );
}
