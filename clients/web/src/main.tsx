import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, signInPath } from "./api";
import { NotFound } from "./common";
import type { Caller } from "./model";
import { Datasets } from "./pages/Datasets";
import { Diff } from "./pages/Diff";
import { Frames } from "./pages/Frames";
import { SignIn } from "./pages/SignIn";
import { Statistics } from "./pages/Statistics";
import { Versions } from "./pages/Versions";
import { Viewer } from "./pages/Viewer";
import { interceptLinks, navigate, useLocation } from "./router";
import "./style.css";

const SEGMENT = "([^/]+)";
const route = (pattern: string) => new RegExp("^" + pattern.replaceAll("{}", SEGMENT) + "/?$");
const ROUTES = {
  datasets: route(""),
  versions: route("/datasets/{}"),
  frames: route("/datasets/{}/versions/{}"),
  viewer: route("/datasets/{}/versions/{}/frames/{}"),
  statistics: route("/datasets/{}/versions/{}/statistics"),
  diff: route("/datasets/{}/diff"),
};

function App() {
  const { path, query } = useLocation();
  const [caller, setCaller] = useState<Caller | null | undefined>(undefined);
  const signingIn = path === "/sign-in";

  // Every page but sign-in needs a session: an anonymous visitor is sent to sign in first.
  useEffect(() => {
    if (signingIn) {
      setCaller(undefined);
      return;
    }
    if (caller) return;
    get<{ caller: Caller }>("/api/session").then(
      (answer) => setCaller(answer.caller ?? {}),
      (error: Error) => {
        setCaller(null);
        if (error instanceof ApiError && error.status === 401) navigate(signInPath(), true);
      },
    );
  }, [signingIn]);

  if (signingIn) return <SignIn next={query.get("next")} />;
  if (caller === undefined) return <p class="muted boot">Loading…</p>;
  if (caller === null) return <p class="muted boot">The gateway cannot be reached. Reload to try again.</p>;

  const match = (pattern: RegExp) => path.match(pattern)?.slice(1).map(decodeURIComponent) ?? null;
  let m: string[] | null;
  if ((m = match(ROUTES.datasets))) return <Datasets query={query} />;
  if ((m = match(ROUTES.versions))) return <Versions key={m[0]} datasetId={m[0]} />;
  if ((m = match(ROUTES.frames))) return <Frames key={m.join("/")} datasetId={m[0]} versionId={m[1]} query={query} />;
  if ((m = match(ROUTES.viewer))) return <Viewer key={m.slice(0, 2).join("/")} datasetId={m[0]} versionId={m[1]} frameId={m[2]} query={query} />;
  if ((m = match(ROUTES.statistics))) return <Statistics datasetId={m[0]} versionId={m[1]} query={query} />;
  if ((m = match(ROUTES.diff))) return <Diff datasetId={m[0]} query={query} />;
  return <NotFound what="Page" detail={`Nothing lives at ${path}.`} />;
}

interceptLinks();
render(<App />, document.getElementById("app")!);
