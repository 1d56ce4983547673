// What the runs view asks the server, from its URL alone: boot.ts starts the same
// request before the view's code has loaded, and the view then takes its answer.

export const FIRST_PAGE = 200;

export interface RunsQuery {
  [key: string]: string | number | boolean | string[] | undefined;
  experiment_ids: string;
  filter: string;
  view: string;
  tags: boolean | undefined;
}

export interface RunsState {
  experimentIds: string[];
  filter: string;
  sort: string;
  dir: string;
  cols: string;
  view: string;
}

/** The view's state as its URL holds it (the defaults are the view's). */
export function runsState(params: URLSearchParams): RunsState {
  return {
    experimentIds: (params.get("e") ?? "").split(",").filter(Boolean),
    filter: params.get("filter") ?? "",
    sort: params.get("sort") ?? "start_time",
    dir: params.get("dir") ?? "desc",
    cols: params.get("cols") ?? "",
    view: params.get("view") ?? "active",
  };
}

/** The server's order for a column of the grid, so a first page matches the sort. */
export function orderBy(sort: string, dir: string): string[] | undefined {
  const way = dir === "asc" ? "ASC" : "DESC";
  const attributes: Record<string, string> = {
    name: "attributes.run_name",
    status: "attributes.status",
    start_time: "attributes.start_time",
  };
  if (sort in attributes) return [`${attributes[sort]} ${way}`];
  const kind = { m: "metrics", p: "params", t: "tags" }[sort.slice(0, 1)];
  if (kind && sort[1] === ".") return [`${kind}.\`${sort.slice(2)}\` ${way}`];
  return undefined;
}

/** The whole table's query; tag values (long, rarely shown) only when a tag column is. */
export function tableQuery(state: RunsState, ids: string[]): RunsQuery {
  const withTags = state.cols.split(",").some((c) => c.startsWith("t.")) || state.sort.startsWith("t.");
  return { experiment_ids: ids.join(","), filter: state.filter, view: state.view, tags: withTags || undefined };
}

/** The first page's query: the same runs in the grid's order, FIRST_PAGE of them. */
export function firstPageQuery(state: RunsState, ids: string[]): RunsQuery {
  return { ...tableQuery(state, ids), limit: FIRST_PAGE, order_by: orderBy(state.sort, state.dir) };
}
