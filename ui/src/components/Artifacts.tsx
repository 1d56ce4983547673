import { Link } from "react-router-dom";
import { artifactUrl, get, type ArtifactFile } from "../api";
import { Empty, ErrorBox, formatBytes, Loading, Show, useApi, useParam, useParamsUpdate } from "./common";

const IMAGE = /\.(png|jpe?g|gif|svg|webp|bmp)$/i;
const TABLE = /\.(csv|tsv)$/i;
const JSON_FILE = /\.(json|jsonl)$/i;
const TEXT = /(\.(txt|log|md|ya?ml|py|cfg|toml|ini|xml|html|sh|r|sql|ipynb)|MLmodel|requirements[^/]*|LICENSE|Dockerfile)$/i;
// Previews read the whole file: beyond this they offer the download instead.
const PREVIEW_BYTES = 5 * 1024 * 1024;
const TABLE_ROWS = 500;

function parent(path: string): string {
  const at = path.lastIndexOf("/");
  return at < 0 ? "" : path.slice(0, at);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function Artifacts({ runId }: { runId: string }) {
  const [file, setFile] = useParam("file");
  const dir = file ? parent(file) : null;
  const [browse] = useParam("dir");
  const update = useParamsUpdate();
  const open = (folder: string) => update({ file: "", dir: folder });
  const current = dir ?? browse;
  const listing = useApi(
    (signal) =>
      get<{ files: ArtifactFile[] }>(
        `/api/v1/runs/${encodeURIComponent(runId)}/artifacts`,
        { path: current },
        signal,
      ),
    [runId, current],
  );
  const crumbs = current ? current.split("/") : [];
  return (
    <div className="artifacts">
      <div className="card tree">
        <div className="crumbs">
          <button className="link" onClick={() => open("")}>
            artifacts
          </button>
          {crumbs.map((part, i) => (
            <span key={i}>
              {" / "}
              <button
                className="link"
                onClick={() => open(crumbs.slice(0, i + 1).join("/"))}
              >
                {part}
              </button>
            </span>
          ))}
        </div>
        <Show loaded={listing}>
          {({ files }) =>
            files.length === 0 ? (
              <p className="muted">No artifacts.</p>
            ) : (
              <ul className="plain files" data-testid="artifact-list">
                {files.map((f) => (
                  <li key={f.path} className={f.path === file ? "active" : ""}>
                    {f.is_dir ? (
                      <button className="link" onClick={() => open(f.path)}>
                        📁 {basename(f.path)}/
                      </button>
                    ) : (
                      <button className="link" onClick={() => setFile(f.path)}>
                        {basename(f.path)}
                      </button>
                    )}
                    <span className="muted"> {formatBytes(f.size)}</span>
                  </li>
                ))}
              </ul>
            )
          }
        </Show>
      </div>
      <div className="card preview" data-testid="artifact-preview">
        {file ? (
          <Preview
            runId={runId}
            path={file}
            size={listing.data?.files.find((f) => f.path === file)?.size ?? null}
          />
        ) : (
          <Empty title="Pick a file to preview it" />
        )}
      </div>
    </div>
  );
}

function Preview({ runId, path, size }: { runId: string; path: string; size: number | null }) {
  const url = artifactUrl(runId, path);
  const header = (
    <div className="toolbar small">
      <strong className="mono">{path}</strong>
      <span className="muted">{formatBytes(size)}</span>
      <a href={url} download={basename(path)}>
        download
      </a>
    </div>
  );
  if (IMAGE.test(path))
    return (
      <>
        {header}
        <img className="artifact-image" src={url} alt={path} />
      </>
    );
  const kind = TABLE.test(path) ? "table" : JSON_FILE.test(path) ? "json" : TEXT.test(path) ? "text" : null;
  if (kind === null || (size !== null && size > PREVIEW_BYTES))
    return (
      <>
        {header}
        <p className="muted">No preview for this file{kind ? " (too large)" : ""}: download it.</p>
      </>
    );
  return (
    <>
      {header}
      <TextPreview url={url} kind={kind} tsv={/\.tsv$/i.test(path)} />
    </>
  );
}

function TextPreview({ url, kind, tsv }: { url: string; kind: "table" | "json" | "text"; tsv: boolean }) {
  const loaded = useApi(
    async (signal) => {
      const response = await fetch(url, { signal, credentials: "same-origin" });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      return response.text();
    },
    [url],
  );
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  if (loaded.data === undefined) return <Loading />;
  if (kind === "json") return <pre className="code">{prettyJson(loaded.data)}</pre>;
  if (kind === "table") return <CsvTable text={loaded.data} tsv={tsv} />;
  return <pre className="code">{loaded.data}</pre>;
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text; // JSON lines, or not JSON after all: show it as it is
  }
}

function CsvTable({ text, tsv }: { text: string; tsv: boolean }) {
  const parsed = useApi(async () => {
    const { default: Papa } = await import("papaparse");
    return Papa.parse<string[]>(text, { delimiter: tsv ? "\t" : "", skipEmptyLines: true, preview: TABLE_ROWS + 1 });
  }, [text, tsv]);
  return (
    <Show loaded={parsed}>
      {({ data }) => {
        const [head = [], ...rows] = data;
        return (
          <div className="scroll-x">
            <table className="grid" data-testid="csv-table">
              <thead>
                <tr>
                  {head.map((h, i) => (
                    <th key={i}>{h}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.map((row, i) => (
                  <tr key={i}>
                    {row.map((cell, j) => (
                      <td key={j}>{cell}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
            {rows.length >= TABLE_ROWS ? <p className="muted">The first {TABLE_ROWS} rows.</p> : null}
          </div>
        );
      }}
    </Show>
  );
}

export function ArtifactLink({ runId, path }: { runId: string; path: string }) {
  return <Link to={`/runs/${runId}?tab=artifacts&file=${encodeURIComponent(path)}`}>{path}</Link>;
}
