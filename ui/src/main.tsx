import { StrictMode, useEffect, useState, type ComponentType } from "react";
import { createRoot } from "react-dom/client";
import {
  BrowserRouter,
  NavLink,
  Navigate,
  Route,
  Routes,
  matchPath,
  useLocation,
  useNavigate,
} from "react-router-dom";
import { loadSession, post, setCsrfToken, setUnauthenticatedHandler, type Me } from "./api";
import { Loading } from "./components/common";
import { lazyComponent, type LazyComponent } from "./lazy";
import "./styles.css";

// Each view is its own chunk: the first page loads only what it draws.
const view = <P extends object>(load: () => Promise<{ default: ComponentType<P> }>) =>
  lazyComponent(() => load().then((m) => m.default), () => <Loading />);
const Experiments = view(() => import("./views/Experiments"));
const Runs = view(() => import("./views/Runs"));
const RunPage = view(() => import("./views/RunPage"));
const Compare = view(() => import("./views/Compare"));
const Data = view(() => import("./views/Data"));
const Models = view(() => import("./views/Models"));
const Pipelines = view(() => import("./views/Pipelines"));
const Deployments = view(() => import("./views/Deployments"));
const Monitoring = view(() => import("./views/Monitoring"));
const Login = view(() => import("./views/Login"));

// The views at their paths: the same table draws the routes and finds the view an
// address opens, whose chunk (boot.ts fetches it already) is in memory before the
// first render.
const VIEWS: [string, LazyComponent<object>][] = [
  ["/experiments", Experiments],
  ["/runs", Runs],
  ["/runs/:runId", RunPage],
  ["/compare", Compare],
  ["/data/*", Data],
  ["/models/*", Models],
  ["/pipelines/*", Pipelines],
  ["/deployments/*", Deployments],
  ["/monitoring/*", Monitoring],
];

function firstView(path: string): { preload: () => Promise<void> } | undefined {
  if (path === "/") return Experiments; // where "/" leads
  if (path === "/login") return Login;
  return VIEWS.find(([pattern]) => matchPath(pattern, path))?.[1];
}

function useSession(): [Me | null | undefined, (me: Me | null) => void] {
  // undefined: still asking; null: auth is on and nobody is logged in.
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  useEffect(() => {
    void loadSession().then(setMe);
  }, []);
  return [me, setMe];
}

function userName(me: Me): string | null {
  // Without auth everybody is "anonymous": there is no one to show and nothing to log out of.
  if (!me.user || me.auth === false) return null;
  if (typeof me.user === "string") return me.user;
  return me.user.username ?? me.user.name ?? null;
}

function Shell() {
  const [me, setMe] = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  useEffect(() => {
    setUnauthenticatedHandler(() => {
      setMe(null);
    });
  }, [setMe]);
  if (me === undefined) return <Loading />;
  if (me === null && location.pathname !== "/login") {
    const next = location.pathname + location.search;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  const name = me ? userName(me) : null;
  const logout = async () => {
    await post("/api/v1/auth/logout").catch(() => undefined);
    setCsrfToken(null);
    setMe(null);
    navigate("/login");
  };
  return (
    <div className="app">
      <header className="top">
        <NavLink to="/experiments" className="brand">
          loopline
        </NavLink>
        <nav>
          <NavLink to="/experiments">Experiments</NavLink>
          <NavLink to="/compare">Compare</NavLink>
          <NavLink to="/data">Data</NavLink>
          <NavLink to="/models">Models</NavLink>
          <NavLink to="/pipelines">Pipelines</NavLink>
          <NavLink to="/deployments">Deployments</NavLink>
          <NavLink to="/monitoring">Monitoring</NavLink>
        </nav>
        <span className="spacer" />
        {name ? (
          <span className="who">
            {name}{" "}
            <button className="link" onClick={logout}>
              log out
            </button>
          </span>
        ) : null}
      </header>
      <main>
          <Routes>
            <Route path="/" element={<Navigate to="/experiments" replace />} />
            <Route path="/login" element={<Login onLogin={(found) => setMe(found)} />} />
            {VIEWS.map(([path, View]) => (
              <Route key={path} path={path} element={<View />} />
            ))}
            <Route path="*" element={<NotFound />} />
          </Routes>
      </main>
    </div>
  );
}

function NotFound() {
  const location = useLocation();
  return (
    <div className="empty">
      <h3>No page at {location.pathname}</h3>
      <NavLink to="/experiments">Go to the experiments</NavLink>
    </div>
  );
}

function render(): void {
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      {/* URL changes render at once: controls bound to the URL show their new state
          as soon as they are clicked, not after a transition. */}
      <BrowserRouter useTransitions={false}>
        <Shell />
      </BrowserRouter>
    </StrictMode>,
  );
}

// The opened view's code is in memory before the first render, so it draws without a
// placeholder in between.
void (firstView(window.location.pathname)?.preload() ?? Promise.resolve()).finally(render);
