// The one place the UI talks to the server: JSON in and out, errors as ApiError,
// the session's CSRF token on every state-changing request, and a 401 anywhere
// sends the user to the login page.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const CSRF_KEY = "loopline.csrf";
let onUnauthenticated: () => void = () => {};

export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

export function setCsrfToken(token: string | null): void {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

type Query = Record<string, string | number | boolean | string[] | null | undefined>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function failure(response: Response): Promise<ApiError> {
  let body: { error_code?: string; message?: string; hint?: string; detail?: unknown } = {};
  try {
    body = await response.json();
  } catch {
    // not JSON: the status line says enough
  }
  const message =
    body.message ??
    (typeof body.detail === "string" ? body.detail : undefined) ??
    `${response.status} ${response.statusText}`;
  return new ApiError(response.status, body.error_code ?? String(response.status), message, body.hint);
}

export async function request<T>(
  method: string,
  path: string,
  options: { query?: Query; body?: unknown; signal?: AbortSignal; quiet401?: boolean } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") {
    const token = sessionStorage.getItem(CSRF_KEY);
    if (token) headers["X-CSRF-Token"] = token;
  }
  const response = await fetch(withQuery(path, options.query), {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
    credentials: "same-origin",
  });
  if (!response.ok) {
    if (response.status === 401 && !options.quiet401) onUnauthenticated();
    throw await failure(response);
  }
  return (await response.json()) as T;
}

// -- reads started before the app's code has loaded (see boot.ts) ---------------------------
const PREFETCH_MS = 15_000;
const prefetched = new Map<string, { at: number; answer: Promise<unknown> }>();

/** Starts a GET now; the first `get` of the same URL within a few seconds takes its answer. */
export function prefetch(path: string, query?: Query): void {
  const url = withQuery(path, query);
  if (prefetched.has(url)) return;
  const answer = request<unknown>("GET", url, { quiet401: true });
  answer.catch(() => undefined); // a failure is met again by the view's own request
  prefetched.set(url, { at: Date.now(), answer });
}

function takePrefetched<T>(url: string): Promise<T> | undefined {
  const found = prefetched.get(url);
  if (!found) return undefined;
  prefetched.delete(url);
  if (Date.now() - found.at > PREFETCH_MS) return undefined;
  // A failed prefetch (a 401 before login, say) is asked again, with the usual handling.
  return (found.answer as Promise<T>).catch(() => request<T>("GET", url));
}

export function get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
  const url = withQuery(path, query);
  return takePrefetched<T>(url) ?? request<T>("GET", url, { signal });
}
export const post = <T>(path: string, body?: unknown, query?: Query) =>
  request<T>("POST", path, { body: body ?? {}, query });
export const put = <T>(path: string, body?: unknown, query?: Query) =>
  request<T>("PUT", path, { body: body ?? {}, query });

// -- shapes the native API answers ---------------------------------------------------------
export interface Experiment {
  experiment_id: string;
  name: string;
  description: string;
  lifecycle_stage: string;
  tags: Record<string, string>;
  creation_time: number;
  last_update_time: number;
}

export interface RunInfo {
  run_id: string;
  experiment_id: string;
  run_name: string;
  status: string;
  start_time: number;
  end_time: number | null;
  user_id: string;
  lifecycle_stage: string;
  artifact_uri: string;
  parent_run_id: string | null;
}

export type MetricValue = number | "NaN" | "Infinity" | "-Infinity";

export interface Run {
  info: RunInfo;
  data: {
    metrics: Record<string, MetricValue>;
    params: Record<string, string>;
    tags: Record<string, string>;
  };
}

export type RunRow = [
  string, // run_id
  string, // run_name
  string, // status
  number, // start_time
  number | null, // end_time
  string, // user_id
  string, // experiment_id
  string | null, // parent_run_id
  Record<string, string> | null, // params
  Record<string, number | null> | null, // latest metrics (NaN and infinities are null)
  Record<string, string> | null, // tags, cut to 200 characters (null unless asked for)
];

export interface RunsTable {
  rows: RunRow[];
  total: number;
  truncated: boolean;
  with_tags: boolean;
}

export interface RunKeys {
  params: string[];
  metrics: string[];
  tags: string[];
}

export interface History {
  run_id: string;
  key: string;
  total: number;
  nonfinite: number;
  steps: number[];
  timestamps: number[];
  values: (number | null)[];
}

export interface ArtifactFile {
  path: string;
  is_dir: boolean;
  size: number | null;
}

/** One metric of several runs in one request (those that logged it, in the given order). */
export const compareHistories = (
  runIds: string[],
  key: string,
  x: string,
  maxPoints = 1500,
  signal?: AbortSignal,
) =>
  get<{ key: string; histories: History[] }>(
    "/api/v1/ui/compare-histories",
    { run_ids: runIds.join(","), key, x, max_points: maxPoints },
    signal,
  ).then((answer) => answer.histories);

export const HISTORY_POINTS = 1500;
export const historiesQuery = (runId: string, x: string) => ({ run_id: runId, x, max_points: HISTORY_POINTS });

export const metricHistories = (runId: string, x: string, signal?: AbortSignal) =>
  get<{ histories: History[] }>("/api/v1/ui/metric-histories", historiesQuery(runId, x), signal).then(
    (answer) => answer.histories,
  );

export function artifactUrl(runId: string, path: string): string {
  return `/api/v1/runs/${encodeURIComponent(runId)}/artifacts/${path
    .split("/")
    .map(encodeURIComponent)
    .join("/")}`;
}

export function metricNumber(value: MetricValue | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  return value === "NaN" ? Number.NaN : value === "Infinity" ? Infinity : -Infinity;
}

export type Capabilities = { apis: Record<string, string[]> };

let capabilities: Promise<Capabilities> | null = null;

/** Which optional APIs (pipelines, deployments, monitors, auth) this server answers; asked once. */
export function getCapabilities(): Promise<Capabilities> {
  capabilities ??= get<Capabilities>("/api/v1/ui/capabilities").catch((error: unknown) => {
    capabilities = null;
    throw error;
  });
  return capabilities;
}

export type Me = {
  user?: { name?: string; username?: string } | string;
  auth?: boolean;
  csrf_token?: string;
};

let session: Promise<Me | null> | null = null;

/**
 * Who is signed in: null when auth is on and nobody is, `{auth: false}` on an open
 * server. Asked straight away (not after the capabilities: the server's first
 * OpenAPI document takes seconds to build); the first call's answer is kept for the
 * app's first render (boot.ts asks before the app's code has loaded).
 */
export function loadSession(): Promise<Me | null> {
  const found = session;
  if (found) {
    session = null;
    return found;
  }
  session = request<Me>("GET", "/api/v1/auth/me", { quiet401: true }).then(
    (answer) => {
      // A reload keeps the session cookie: the CSRF token comes back with /me.
      if (answer.csrf_token) setCsrfToken(answer.csrf_token);
      return answer;
    },
    (error: unknown) => (error instanceof ApiError && error.status === 401 ? null : { auth: false }),
  );
  return session;
}
