import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, enc, params } from "../api";
import { ErrorBox, Page, Status, useApi } from "../common";
import type { Dataset, FrameSummary, Version } from "../model";
import { count, labelColour, statusName } from "../model";
import { navigate, withQuery } from "../router";

interface FramesAnswer {
  frames?: FrameSummary[];
  next_page_token?: string;
  total?: number | string;
}

interface ContextTile {
  context_id: string;
  frame_count?: number | string;
  first_frame?: FrameSummary;
}

interface ContextsAnswer {
  contexts?: ContextTile[];
  next_page_token?: string;
}

export const DEFAULT_PAGE_SIZE = 100;
/** Where the viewer's Escape returns to: the grid the frame was opened from. */
export const GRID_RETURN_KEY = "framevault:grid";

export function viewerPath(datasetId: string, versionId: string, frameId: string, extra = ""): string {
  return `/datasets/${enc(datasetId)}/versions/${enc(versionId)}/frames/${enc(frameId)}${extra}`;
}

/** The frames of a version: thumbnails, query, sort, group by context, keyset pages. */
export function Frames({ datasetId, versionId, query }: { datasetId: string; versionId: string; query: URLSearchParams }) {
  const base = `/api/datasets/${enc(datasetId)}/versions/${enc(versionId)}`;
  const here = `/datasets/${enc(datasetId)}/versions/${enc(versionId)}`;
  const dataset = useApi<Dataset>(`/api/datasets/${enc(datasetId)}`);
  const version = useApi<Version>(base);

  const q = query.get("q") ?? "";
  const sort = query.get("sort") ?? "";
  const desc = query.get("desc") === "1";
  const grouped = query.get("group") === "context";
  const context = query.get("context");
  const pageToken = query.get("page") ?? "";
  const pageSize = Math.min(200, Math.max(1, Number(query.get("size")) || DEFAULT_PAGE_SIZE));

  const listing = grouped && context === null
    ? `${base}/contexts${params({ query: q, page_size: pageSize, page_token: pageToken })}`
    : `${base}/frames${params({ query: q, context, sort, desc: context !== null && desc, page_size: pageSize, page_token: pageToken })}`;
  const page = useApi<FramesAnswer & ContextsAnswer>(dataset.data && version.data ? listing : null);

  // Tokens of the pages before this one, so "Previous" works with keyset paging (no offsets).
  const [earlier, setEarlier] = useState<string[]>([]);
  const filters = `${q}|${sort}|${desc}|${grouped}|${context}|${pageSize}`;
  const lastFilters = useRef(filters);
  useEffect(() => {
    if (lastFilters.current !== filters) setEarlier([]);
    lastFilters.current = filters;
  }, [filters]);

  useEffect(() => {
    sessionStorage.setItem(GRID_RETURN_KEY, location.pathname + location.search);
  }, [query.toString()]);

  if (!dataset.data) return <Status loaded={dataset} what="Dataset" />;
  if (!version.data) return <Status loaded={version} what="Version" />;

  // A refused query is shown at the query box; other refusals (a bad page token, say) as errors.
  const queryError = page.error instanceof ApiError && page.error.status === 400
    && (page.error.position !== null || page.error.fields.some((f) => /(^|\.)query$/.test(f.field))) ? page.error : null;
  const nextToken = page.data?.next_page_token || null;
  const go = (changes: Record<string, string | null>) => navigate(here + withQuery(query, { page: null, ...changes }));
  const toPage = (token: string | null, back: boolean) => {
    if (back) setEarlier((stack) => stack.slice(0, -1));
    else setEarlier((stack) => [...stack, pageToken]);
    navigate(here + withQuery(query, { page: token }));
  };

  const frames = page.data?.frames ?? [];
  const contexts = page.data?.contexts ?? [];
  const crumbs = [
    { label: "datasets", href: "/" },
    { label: dataset.data.name, href: `/datasets/${enc(datasetId)}` },
    { label: version.data.name || versionId, href: context !== null ? here + withQuery(query, { context: null, page: null }) : undefined },
    ...(context !== null ? [{ label: `context ${context}` }] : []),
  ];
  return (
    <Page crumbs={crumbs} wide>
      <div class="grid-head">
        <span class={`status ${statusName(version.data.status)}`}>{statusName(version.data.status)}</span>
        <span class="muted">{count(version.data.frame_count).toLocaleString()} frames</span>
        <a href={`${here}/statistics`}>Statistics</a>
      </div>
      <QueryBox value={q} error={queryError} onSubmit={(text) => go({ q: text })} />
      <div class="toolbar">
        {context === null && (
          <label class="check">
            <input type="checkbox" checked={grouped} data-testid="group-by-context"
              onChange={(e) => go({ group: (e.target as HTMLInputElement).checked ? "context" : null })} />
            Group by context
          </label>
        )}
        {context === null && !grouped && (
          <span class="muted" data-testid="order">ordered by context, then timestamp (the order the service pages fast);
            narrow by metadata with the query, e.g. <code>meta.speed:[30 TO 80]</code></span>
        )}
        {context !== null && (
          <>
            <a href={here + withQuery(query, { context: null, page: null })}>← All contexts</a>
            {frames[0] && <a class="button" data-testid="play" href={viewerPath(datasetId, versionId, frames[0].id)}>Play ▶</a>}
            <label class="check">
              <input type="checkbox" checked={desc} data-testid="latest-first" onChange={(e) => go({ desc: (e.target as HTMLInputElement).checked ? "1" : null })} />
              latest first
            </label>
            <span class="muted">frames of this context in timestamp order; ← / → in the viewer steps through them</span>
          </>
        )}
        {page.data?.total !== undefined && <span class="muted" data-testid="total">{count(page.data.total).toLocaleString()} match</span>}
      </div>
      {page.error && !queryError && <ErrorBox error={page.error} />}
      {page.loading && <p class="muted">Loading…</p>}
      {page.data && (grouped && context === null ? (
        <Grid empty="No contexts match." count={contexts.length}>
          {contexts.map((tile) => (
            <a key={tile.context_id} class="tile" data-testid="context-tile" data-context={tile.context_id}
              href={here + withQuery(query, { context: tile.context_id, page: null })}>
              <Thumb frame={tile.first_frame} />
              <span class="caption"><b>{tile.context_id}</b><span class="muted">{contextSize(tile.frame_count)}</span></span>
            </a>
          ))}
        </Grid>
      ) : (
        <Grid empty={q ? "No frames match this query." : "No frames."} count={frames.length}>
          {frames.map((frame) => (
            <a key={frame.id} class="tile" data-testid="frame-tile" data-frame={frame.id} href={viewerPath(datasetId, versionId, frame.id)}>
              <Thumb frame={frame} />
              <span class="caption">
                <b title={frame.id}>{frame.id}</b>
                <span class="muted">{frame.context_id} · {count(frame.timestamp)} ms · {count(frame.roi_count)} ROIs</span>
                <span class="chips">{(frame.labels ?? []).slice(0, 4).map((l) => <span key={l} class="chip" style={{ borderColor: labelColour(l) }}>{l}</span>)}</span>
              </span>
            </a>
          ))}
        </Grid>
      ))}
      <nav class="pager" aria-label="pages">
        <button data-testid="first-page" disabled={!pageToken} onClick={() => { setEarlier([]); navigate(here + withQuery(query, { page: null })); }}>First</button>
        <button data-testid="previous-page" disabled={!pageToken} onClick={() => toPage(earlier[earlier.length - 1] || null, true)}>← Previous</button>
        <span class="muted">page {earlier.length + 1}</span>
        <button data-testid="next-page" disabled={!nextToken} onClick={() => nextToken && toPage(nextToken, false)}>Next →</button>
      </nav>
    </Page>
  );
}

/** The gateway counts a context's frames up to CONTEXT_COUNT_LIMIT (that number means "or more"). */
const CONTEXT_COUNT_LIMIT = 10_000;

function contextSize(frameCount: number | string | undefined): string {
  const n = count(frameCount);
  return n >= CONTEXT_COUNT_LIMIT ? `${CONTEXT_COUNT_LIMIT.toLocaleString()}+ frames` : `${n.toLocaleString()} frame${n === 1 ? "" : "s"}`;
}

function Thumb({ frame }: { frame: FrameSummary | undefined }) {
  const [failed, setFailed] = useState(false);
  if (!frame?.thumbnail_url || failed) return <span class="thumb missing">{failed ? "no preview" : ""}</span>;
  return <img class="thumb" data-testid="thumbnail" src={frame.thumbnail_url} alt={frame.id} decoding="async" onError={() => setFailed(true)} />;
}

/** The tiles, with arrow keys moving between them (Enter opens one); PageUp/PageDown page. */
function Grid({ children, empty, count: tiles }: { children: ComponentChildren; empty: string; count: number }) {
  function onKey(event: KeyboardEvent) {
    const all = Array.from((event.currentTarget as HTMLElement).querySelectorAll<HTMLElement>(".tile"));
    const at = all.indexOf(document.activeElement as HTMLElement);
    if (event.key === "PageDown" || event.key === "PageUp") {
      const button = document.querySelector<HTMLButtonElement>(`[data-testid=${event.key === "PageDown" ? "next-page" : "previous-page"}]`);
      if (button && !button.disabled) {
        event.preventDefault();
        button.click();
      }
      return;
    }
    if (!["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"].includes(event.key) || !all.length) return;
    event.preventDefault();
    const columns = Math.max(1, all.filter((tile) => tile.offsetTop === all[0].offsetTop).length);
    const from = at < 0 ? 0 : at;
    const step: Record<string, number> = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns, ArrowDown: columns, Home: -from, End: all.length - 1 - from };
    const target = at < 0 ? 0 : Math.min(all.length - 1, Math.max(0, from + step[event.key]));
    all[target].focus();
  }
  if (!tiles) return <p class="muted" data-testid="empty">{empty}</p>;
  return <div class="grid" data-testid="grid" onKeyDown={onKey}>{children}</div>;
}

/** The query box: the SDK's query language; an error shows its message and where in the text it is. */
function QueryBox({ value, error, onSubmit }: { value: string; error: ApiError | null; onSubmit: (text: string) => void }) {
  const [text, setText] = useState(value);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => setText(value), [value]);
  useEffect(() => {
    const focusOnSlash = (event: KeyboardEvent) => {
      if (event.key === "/" && !(event.target instanceof HTMLInputElement)) {
        event.preventDefault();
        input.current?.focus();
      }
    };
    document.addEventListener("keydown", focusOnSlash);
    return () => document.removeEventListener("keydown", focusOnSlash);
  }, []);
  useEffect(() => {
    if (error?.position !== null && error?.position !== undefined && input.current) {
      input.current.focus();
      input.current.setSelectionRange(error.position, Math.min(value.length, error.position + 1));
    }
  }, [error]);
  const position = error?.position ?? null;
  return (
    <form class="query" role="search" onSubmit={(e) => { e.preventDefault(); onSubmit(text.trim()); }}>
      <input ref={input} type="search" name="q" data-testid="query" aria-label="Query" spellcheck={false}
        aria-invalid={error ? "true" : "false"} aria-describedby={error ? "query-error" : undefined}
        placeholder='Query, e.g. label:car AND confidence:>=0.5 AND meta.weather:"rain"   (press / to focus)'
        value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
      <button type="submit">Search</button>
      {error && (
        <div id="query-error" class="query-error" role="alert" data-testid="query-error" data-position={position ?? ""}>
          <span>{error.message}</span>
          {position !== null && (
            <pre class="caret" aria-label={`at position ${position}`}>{value}{"\n"}{" ".repeat(Math.max(0, position))}^ position {position}</pre>
          )}
        </div>
      )}
    </form>
  );
}
