// Pipelines, deployments and monitors: their REST routers arrive with their
// capabilities. Until a server answers for one, its view says so plainly.
import { get, getCapabilities } from "../api";
import { Empty, ErrorBox, formatTime, formatValue, Loading, useApi } from "../components/common";

type Kind = "pipelines" | "deployments" | "monitors";

const TITLES: Record<Kind, string> = {
  pipelines: "Pipelines",
  deployments: "Deployments",
  monitors: "Monitoring",
};

const HOW: Record<Kind, string> = {
  pipelines: "loopline pipeline run pipeline.py",
  deployments: "loopline deploy create NAME models:/MODEL@champion",
  monitors: "loopline monitor create NAME --deployment NAME",
};

type Item = Record<string, unknown>;

function firstList(answer: Record<string, unknown>): Item[] | null {
  for (const value of Object.values(answer)) if (Array.isArray(value)) return value as Item[];
  return null;
}

export default function Ops({ kind }: { kind: Kind }) {
  const loaded = useApi(
    async (signal) => {
      const { apis } = await getCapabilities();
      // No list route: this server has no such API (yet), which is not an error.
      if (!(apis[kind] ?? []).includes(`/api/v1/${kind}`)) return null;
      return get<Record<string, unknown>>(`/api/v1/${kind}`, undefined, signal);
    },
    [kind],
  );
  const title = TITLES[kind];
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  if (loaded.data === undefined) return <Loading />;
  if (loaded.data === null)
    return (
      <section>
        <h1>{title}</h1>
        <Empty title={`This server does not serve ${title.toLowerCase()} yet`}>
          <p>
            The {kind} API (<code>/api/v1/{kind}</code>) is not available in this version of the server, so
            there is nothing to show here.
          </p>
        </Empty>
      </section>
    );
  const items = firstList(loaded.data) ?? [];
  return (
    <section>
      <h1>{title}</h1>
      {items.length === 0 ? (
        <Empty title={`No ${kind} yet`}>
          <p>
            <code>{HOW[kind]}</code>
          </p>
        </Empty>
      ) : (
        <ItemTable items={items} />
      )}
    </section>
  );
}

function ItemTable({ items }: { items: Item[] }) {
  const keys = [...new Set(items.flatMap((i) => Object.keys(i)))].filter((k) =>
    items.some((i) => i[k] === null || typeof i[k] !== "object"),
  );
  return (
    <table className="grid" data-testid="ops-table">
      <thead>
        <tr>
          {keys.map((k) => (
            <th key={k}>{k}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {items.map((item, i) => (
          <tr key={i}>
            {keys.map((k) => (
              <td key={k}>
                {/_at$|_time$/.test(k) && typeof item[k] === "number"
                  ? formatTime(item[k] as number)
                  : formatValue(item[k])}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
