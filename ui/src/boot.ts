// The app's entry, a few KiB: it starts the opened view's requests and its code at
// once, then loads the app. Without it each waited for the one before: the app's
// code, then who is signed in, then the view's code, and only then the view's data.
import { historiesQuery, loadSession, prefetch } from "./api";
import { firstPageQuery, runsState } from "./views/runsQuery";

function start(path: string, params: URLSearchParams): void {
  if (path === "/runs") {
    const state = runsState(params);
    if (state.experimentIds.length) prefetch("/api/v1/ui/runs", firstPageQuery(state, state.experimentIds));
    prefetch("/api/v1/experiments", { view: "all" });
    void import("./views/Runs");
    return;
  }
  const run = /^\/runs\/([^/]+)$/.exec(path);
  if (run) {
    const runId = decodeURIComponent(run[1]);
    prefetch(`/api/v1/runs/${encodeURIComponent(runId)}`);
    if (params.get("tab") === "metrics") {
      prefetch("/api/v1/ui/metric-histories", historiesQuery(runId, params.get("x") || "step"));
      void import("./charts/MetricChart");
    }
    void import("./views/RunPage");
  }
}

void loadSession();
start(window.location.pathname, new URLSearchParams(window.location.search));
void import("./main");
