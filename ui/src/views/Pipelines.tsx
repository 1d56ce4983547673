// Pipelines: runs, one run's DAG (step states and durations), step logs and tracebacks,
// triggers and their firings. Reads /api/v1/pipelines.
import { Link, Route, Routes, useParams } from "react-router-dom";
import { get } from "../api";
import { Empty, formatTime, RunLink, Show, Tabs, useApi, useParam, useTab } from "../components/common";
import { durationMs, State, WhenServed } from "./Ops";

interface Step {
  name: string;
  status: string;
  child_run_id: string | null;
  source: string;
  attempts: number;
  error: string;
  traceback: string;
  started_at: number | null;
  ended_at: number | null;
  duration_ms: number | null;
}

interface DagNode {
  name: string;
  step: string;
  source: string;
  upstream: string[];
}

interface PipelineRun {
  id: string;
  pipeline: string;
  target: string;
  status: string;
  executor: string;
  params: Record<string, unknown>;
  dag: { pipeline: string; nodes: DagNode[] };
  error: string;
  resumed_from: string | null;
  firing_id: number | null;
  created_by: string;
  started_at: number;
  ended_at: number | null;
  duration_ms: number | null;
  steps: Step[];
}

interface Trigger {
  id: number;
  pipeline: string;
  target: string;
  kind: string;
  spec: string;
  params: Record<string, unknown>;
  enabled: boolean;
  next_fire_at: number | null;
  created_at: number;
  created_by: string;
}

interface Firing {
  id: number;
  trigger_id: number;
  reason: string;
  status: string;
  pipeline_run_id: string | null;
  message: string;
  fired_at: number;
}

export default function Pipelines() {
  return (
    <WhenServed kind="pipelines">
      <Routes>
        <Route index element={<PipelineList />} />
        <Route path="runs/:runId" element={<PipelineRunPage />} />
      </Routes>
    </WhenServed>
  );
}

const TABS: [string, string][] = [
  ["runs", "Runs"],
  ["triggers", "Schedules and triggers"],
  ["firings", "Firings"],
];

function PipelineList() {
  const tab = useTab(TABS);
  return (
    <section>
      <h1>Pipelines</h1>
      <Tabs tabs={TABS} />
      {tab === "runs" ? <RunList /> : tab === "triggers" ? <Triggers /> : <Firings />}
    </section>
  );
}

function RunList() {
  const [pipeline, setPipeline] = useParam("pipeline");
  const [status, setStatus] = useParam("status");
  const loaded = useApi(
    (signal) =>
      get<{ runs: PipelineRun[] }>("/api/v1/pipelines/runs", { pipeline, status, limit: 200 }, signal),
    [pipeline, status],
  );
  return (
    <>
      <div className="toolbar">
        <input
          aria-label="Pipeline name"
          placeholder="pipeline"
          defaultValue={pipeline}
          onKeyDown={(e) => e.key === "Enter" && setPipeline(e.currentTarget.value.trim())}
        />
        <select aria-label="Status" value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">any status</option>
          {["running", "succeeded", "failed", "gate_failed", "waiting_approval", "killed"].map((s) => (
            <option key={s} value={s}>
              {s.replace(/_/g, " ")}
            </option>
          ))}
        </select>
      </div>
      <Show loaded={loaded}>
        {({ runs }) =>
          runs.length === 0 ? (
            <Empty title="No pipeline runs">
              <p>
                <code>loopline pipeline run pipeline.py</code>
              </p>
            </Empty>
          ) : (
            <table className="grid" data-testid="pipeline-runs">
              <thead>
                <tr>
                  <th>Run</th>
                  <th>Pipeline</th>
                  <th>Status</th>
                  <th>Steps</th>
                  <th>Started</th>
                  <th>Duration</th>
                  <th>Started by</th>
                </tr>
              </thead>
              <tbody>
                {runs.map((r) => (
                  <tr key={r.id} data-run-id={r.id}>
                    <td>
                      <Link to={`/pipelines/runs/${r.id}`}>{r.id.slice(0, 12)}</Link>
                    </td>
                    <td>{r.pipeline}</td>
                    <td>
                      <State value={r.status} />
                    </td>
                    <td>
                      <StepDots steps={r.steps} />
                    </td>
                    <td>{formatTime(r.started_at)}</td>
                    <td>{durationMs(r.duration_ms)}</td>
                    <td>{r.firing_id ? `trigger firing #${r.firing_id}` : r.created_by}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </>
  );
}

function StepDots({ steps }: { steps: Step[] }) {
  return (
    <span className="dots">
      {steps.map((s) => (
        <span key={s.name} className={`dot state-${s.status}`} title={`${s.name}: ${s.status}`} />
      ))}
    </span>
  );
}

function PipelineRunPage() {
  const { runId = "" } = useParams();
  const [selected, setSelected] = useParam("step");
  const loaded = useApi((signal) => get<PipelineRun>(`/api/v1/pipelines/runs/${runId}`, undefined, signal), [runId]);
  return (
    <Show loaded={loaded}>
      {(run) => {
        const failed = run.steps.find((s) => s.status === "failed");
        const current = run.steps.find((s) => s.name === selected) ?? failed ?? run.steps[0];
        return (
          <section>
            <div className="toolbar">
              <h1>
                {run.pipeline} <State value={run.status} />
              </h1>
              <span className="muted">
                run <RunLink id={run.id} name={run.id.slice(0, 12)} /> · {formatTime(run.started_at)} ·{" "}
                {durationMs(run.duration_ms)} · {run.executor} executor
                {run.resumed_from ? ` · resumed from ${run.resumed_from.slice(0, 12)}` : ""}
              </span>
            </div>
            <p className="muted">
              <code>{run.target}</code> {paramText(run.params)}
            </p>
            {run.error ? (
              <div className="error" role="alert">
                <strong>{run.error}</strong>
              </div>
            ) : null}
            <div className="card">
              <Dag nodes={run.dag.nodes} steps={run.steps} selected={current?.name} onSelect={setSelected} />
            </div>
            <div className="columns">
              <div className="card">
                <h3>Steps</h3>
                <StepTable steps={run.steps} selected={current?.name} onSelect={setSelected} />
              </div>
              {current ? <StepDetail runId={run.id} step={current} /> : null}
            </div>
          </section>
        );
      }}
    </Show>
  );
}

function paramText(params: Record<string, unknown>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}

function StepTable(props: { steps: Step[]; selected?: string; onSelect: (name: string) => void }) {
  return (
    <table className="grid" data-testid="pipeline-steps">
      <thead>
        <tr>
          <th>Step</th>
          <th>Status</th>
          <th>Duration</th>
          <th>Attempts</th>
        </tr>
      </thead>
      <tbody>
        {props.steps.map((s) => (
          <tr key={s.name} className={s.name === props.selected ? "selected" : ""}>
            <td>
              <button className="link" onClick={() => props.onSelect(s.name)}>
                {s.name}
              </button>
            </td>
            <td>
              <State value={s.status} />
            </td>
            <td>{durationMs(s.duration_ms)}</td>
            <td>{s.attempts}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function StepDetail({ runId, step }: { runId: string; step: Step }) {
  const logs = useApi(
    async (signal) => {
      const answer = await fetch(
        `/api/v1/pipelines/runs/${runId}/steps/${encodeURIComponent(step.name)}/logs`,
        { signal, credentials: "same-origin" },
      );
      if (!answer.ok) throw new Error(`logs: ${answer.status} ${answer.statusText}`);
      return answer.text();
    },
    [runId, step.name],
  );
  return (
    <div className="card" data-testid="step-detail">
      <h3>
        {step.name} <State value={step.status} />
      </h3>
      <p className="muted">
        {step.source}
        {step.child_run_id ? (
          <>
            {" "}
            · tracked as <RunLink id={step.child_run_id} />
          </>
        ) : null}
      </p>
      {step.error ? <div className="error">{step.error}</div> : null}
      {step.traceback ? (
        <>
          <h4>Traceback</h4>
          <pre className="log" data-testid="step-traceback">
            {step.traceback}
          </pre>
        </>
      ) : null}
      <h4>Output</h4>
      <Show loaded={logs}>
        {(text) =>
          text ? (
            <pre className="log" data-testid="step-logs">
              {text}
            </pre>
          ) : (
            <p className="muted">The step printed nothing.</p>
          )
        }
      </Show>
    </div>
  );
}

// -- the DAG -------------------------------------------------------------------------------
const NODE_W = 170;
const NODE_H = 46;
const GAP_X = 60;
const GAP_Y = 18;

/** Lays the nodes out in columns by their longest path from a root (nodes come in call order). */
function layout(nodes: DagNode[]): Map<string, { x: number; y: number }> {
  const depth = new Map<string, number>();
  for (const node of nodes) {
    depth.set(node.name, Math.max(-1, ...node.upstream.map((u) => depth.get(u) ?? 0)) + 1);
  }
  const rows = new Map<number, number>();
  const at = new Map<string, { x: number; y: number }>();
  for (const node of nodes) {
    const d = depth.get(node.name) ?? 0;
    const row = rows.get(d) ?? 0;
    rows.set(d, row + 1);
    at.set(node.name, { x: d * (NODE_W + GAP_X), y: row * (NODE_H + GAP_Y) });
  }
  return at;
}

function Dag(props: { nodes: DagNode[]; steps: Step[]; selected?: string; onSelect: (name: string) => void }) {
  const { nodes, steps, selected, onSelect } = props;
  if (nodes.length === 0) return <p className="muted">This run recorded no graph.</p>;
  const at = layout(nodes);
  const byName = new Map(steps.map((s) => [s.name, s]));
  const width = Math.max(...[...at.values()].map((p) => p.x)) + NODE_W + 2;
  const height = Math.max(...[...at.values()].map((p) => p.y)) + NODE_H + 2;
  return (
    <svg
      className="dag"
      data-testid="pipeline-dag"
      width={width}
      height={height}
      viewBox={`-1 -1 ${width} ${height}`}
      role="img"
      aria-label="pipeline graph"
    >
      {nodes.flatMap((node) =>
        node.upstream.map((up) => {
          const a = at.get(up);
          const b = at.get(node.name);
          if (!a || !b) return null;
          const x1 = a.x + NODE_W;
          const y1 = a.y + NODE_H / 2;
          const x2 = b.x;
          const y2 = b.y + NODE_H / 2;
          const mid = (x1 + x2) / 2;
          return (
            <path
              key={`${up}->${node.name}`}
              className="edge"
              d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}
            />
          );
        }),
      )}
      {nodes.map((node) => {
        const p = at.get(node.name)!;
        const step = byName.get(node.name);
        const status = step?.status ?? "pending";
        return (
          <g
            key={node.name}
            className={`node state-${status}${node.name === selected ? " selected" : ""}`}
            transform={`translate(${p.x},${p.y})`}
            data-step={node.name}
            data-status={status}
            onClick={() => onSelect(node.name)}
          >
            <title>{`${node.name}: ${status}`}</title>
            <rect width={NODE_W} height={NODE_H} rx={6} />
            <text x={10} y={19} className="name">
              {node.name.length > 20 ? `${node.name.slice(0, 19)}…` : node.name}
            </text>
            <text x={10} y={36} className="meta">
              {status.replace(/_/g, " ")}
              {step?.duration_ms !== null && step?.duration_ms !== undefined ? ` · ${durationMs(step.duration_ms)}` : ""}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

// -- triggers and firings ------------------------------------------------------------------
function describe(t: Trigger): string {
  if (t.kind === "cron") return `cron ${t.spec} (UTC)`;
  if (t.kind === "new_data") return `each new version of ${t.spec}`;
  if (t.kind === "alert") return `each alert of monitor ${t.spec}`;
  return `${t.kind} ${t.spec}`;
}

function Triggers() {
  const loaded = useApi((signal) => get<{ triggers: Trigger[] }>("/api/v1/pipelines/triggers", undefined, signal), []);
  return (
    <Show loaded={loaded}>
      {({ triggers }) =>
        triggers.length === 0 ? (
          <Empty title="No schedules or triggers">
            <p>
              <code>loopline pipeline schedule pipeline.py --cron "0 3 * * *"</code>
            </p>
          </Empty>
        ) : (
          <table className="grid" data-testid="pipeline-triggers">
            <thead>
              <tr>
                <th>#</th>
                <th>Pipeline</th>
                <th>When</th>
                <th>Params</th>
                <th>Next firing</th>
                <th>Enabled</th>
                <th>Created</th>
                <th>Firings</th>
              </tr>
            </thead>
            <tbody>
              {triggers.map((t) => (
                <tr key={t.id}>
                  <td>{t.id}</td>
                  <td title={t.target}>{t.pipeline}</td>
                  <td>{describe(t)}</td>
                  <td>{paramText(t.params)}</td>
                  <td>{t.next_fire_at ? formatTime(t.next_fire_at) : ""}</td>
                  <td>{t.enabled ? "yes" : "no"}</td>
                  <td>
                    {formatTime(t.created_at)} by {t.created_by}
                  </td>
                  <td>
                    <Link to={`/pipelines?tab=firings&trigger=${t.id}`}>firings</Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      }
    </Show>
  );
}

function Firings() {
  const [trigger] = useParam("trigger");
  const loaded = useApi(
    (signal) =>
      get<{ firings: Firing[] }>("/api/v1/pipelines/firings", { trigger_id: trigger, limit: 200 }, signal),
    [trigger],
  );
  return (
    <Show loaded={loaded}>
      {({ firings }) =>
        firings.length === 0 ? (
          <Empty title="No firings yet">
            <p>
              Triggers fire when <code>loopline scheduler</code> runs.
            </p>
          </Empty>
        ) : (
          <table className="grid" data-testid="pipeline-firings">
            <thead>
              <tr>
                <th>#</th>
                <th>Trigger</th>
                <th>Fired</th>
                <th>Why</th>
                <th>Status</th>
                <th>Run</th>
                <th>Message</th>
              </tr>
            </thead>
            <tbody>
              {firings.map((f) => (
                <tr key={f.id}>
                  <td>{f.id}</td>
                  <td>#{f.trigger_id}</td>
                  <td>{formatTime(f.fired_at)}</td>
                  <td>{f.reason}</td>
                  <td>
                    <State value={f.status} />
                  </td>
                  <td>
                    {f.pipeline_run_id ? (
                      <Link to={`/pipelines/runs/${f.pipeline_run_id}`}>{f.pipeline_run_id.slice(0, 12)}</Link>
                    ) : null}
                  </td>
                  <td>{f.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      }
    </Show>
  );
}
