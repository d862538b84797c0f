// Pieces every page uses: loading an API answer, the header, error and not-found states.

import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, del, get } from "./api";
import { navigate } from "./router";

export interface Loaded<T> {
  data: T | null;
  error: ApiError | Error | null;
  loading: boolean;
  reload: () => void;
}

/** GET `path` (none when null) and keep the answer; a later path replaces an earlier one's answer. */
export function useApi<T>(path: string | null): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: ApiError | Error | null; loading: boolean }>({
    data: null, error: null, loading: path !== null,
  });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    if (path === null) {
      setState({ data: null, error: null, loading: false });
      return;
    }
    let current = true;
    setState((previous) => ({ ...previous, loading: true, error: null }));
    get<T>(path).then(
      (data) => current && setState({ data, error: null, loading: false }),
      (error: Error) => current && setState({ data: null, error, loading: false }),
    );
    return () => {
      current = false;
    };
  }, [path, generation]);
  return { ...state, reload: () => setGeneration((n) => n + 1) };
}

export interface Crumb {
  label: string;
  href?: string;
}

export function Page({ crumbs, children, wide }: { crumbs: Crumb[]; children: ComponentChildren; wide?: boolean }) {
  useEffect(() => {
    document.title = [...crumbs.map((c) => c.label)].reverse().concat("framevault").join(" · ");
  }, [crumbs.map((c) => c.label).join("/")]);
  return (
    <div class="page">
      <header class="top">
        <a class="brand" href="/">framevault</a>
        <nav class="crumbs" aria-label="breadcrumbs">
          {crumbs.map((crumb, i) => (
            <span key={i}>
              <span class="sep">/</span>
              {crumb.href ? <a href={crumb.href}>{crumb.label}</a> : <span aria-current="page">{crumb.label}</span>}
            </span>
          ))}
        </nav>
        <button class="link" onClick={signOut}>Sign out</button>
      </header>
      <main class={wide ? "wide" : ""}>{children}</main>
    </div>
  );
}

async function signOut() {
  try {
    await del("/api/session");
  } finally {
    navigate("/sign-in", true);
  }
}

export function NotFound({ what, detail }: { what: string; detail?: string }) {
  return (
    <Page crumbs={[{ label: "not found" }]}>
      <section class="not-found" data-testid="not-found">
        <h1>{what} not found</h1>
        {detail && <p>{detail}</p>}
        <p><a href="/">Back to the datasets</a></p>
      </section>
    </Page>
  );
}

export function ErrorBox({ error }: { error: Error }) {
  return (
    <div class="error" role="alert">
      {error instanceof ApiError ? `${error.code}: ${error.message}` : error.message}
    </div>
  );
}

/** The not-found page for a 404, an error box for other failures, a placeholder while loading. */
export function Status({ loaded, what }: { loaded: Loaded<unknown>; what: string }) {
  if (loaded.error instanceof ApiError && loaded.error.notFound) return <NotFound what={what} detail={loaded.error.message} />;
  if (loaded.error) return <Page crumbs={[{ label: what }]}><ErrorBox error={loaded.error} /></Page>;
  return <Page crumbs={[{ label: what }]}><p class="muted">Loading…</p></Page>;
}
