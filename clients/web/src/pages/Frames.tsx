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
/** How the gateway recognises a metadata-key sort (API.md, "Order"): the query language's spellings. */
const METADATA_SORT_PREFIXES = ["meta.", "metadata.", "meta_data."];

export function isMetadataSort(sort: string): boolean {
  return METADATA_SORT_PREFIXES.some((prefix) => sort.startsWith(prefix));
}
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

  // A metadata sort orders the whole version; inside one context frames are in timestamp order.
  const byMetadata = context === null && isMetadataSort(sort);
  const listing = grouped && context === null
    ? `${base}/contexts${params({ query: q, page_size: pageSize, page_token: pageToken })}`
    : `${base}/frames${params({ query: q, context, sort: context !== null && isMetadataSort(sort) ? "" : sort, desc: (context !== null || byMetadata) && desc, page_size: pageSize, page_token: pageToken })}`;
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
  // A refused sort key is shown at the sort box, with what is wrong with it.
  const sortError = page.error instanceof ApiError && page.error.status === 400
    ? page.error.fields.find((f) => f.field === "sort") ?? null : null;
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
          <SortBox sort={sort} desc={desc} onChange={(key, descending) => go({ sort: key, desc: key && descending ? "1" : null })} />
        )}
        {context === null && !grouped && (byMetadata
          ? <span class="muted" data-testid="order">ordered by <code>{sort}</code>{desc ? ", largest first" : ""}; frames without it last
            (each page sorts the version's frames: slower on huge versions, narrow with the query)</span>
          : <span class="muted" data-testid="order">ordered by context, then timestamp (the order the service pages fast)</span>
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
      {sortError && <div class="query-error" role="alert" data-testid="sort-error">sort: {sortError.description}</div>}
      {page.error && !queryError && !sortError && <ErrorBox error={page.error} />}
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

export function Thumb({ frame }: { frame: FrameSummary | undefined }) {
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

/** Sequential order, or a metadata key (`meta.<path>`, Enter applies it) either way. */
function SortBox({ sort, desc, onChange }: { sort: string; desc: boolean; onChange: (key: string | null, descending: boolean) => void }) {
  const byMetadata = isMetadataSort(sort);
  const [mode, setMode] = useState(byMetadata ? "metadata" : "sequential");
  const [key, setKey] = useState(byMetadata ? sort : "meta.");
  useEffect(() => {
    setMode(isMetadataSort(sort) ? "metadata" : "sequential");
    if (isMetadataSort(sort)) setKey(sort);
  }, [sort]);
  const apply = (descending: boolean) => onChange(key.trim() || null, descending);
  return (
    <form class="sort" data-testid="sort" onSubmit={(e) => { e.preventDefault(); apply(desc); }}>
      <label>
        Sort{" "}
        <select data-testid="sort-mode" value={mode} onChange={(e) => {
          const chosen = (e.target as HTMLSelectElement).value;
          setMode(chosen);
          if (chosen === "sequential" && byMetadata) onChange(null, false);
        }}>
          <option value="sequential">context, then timestamp</option>
          <option value="metadata">metadata key</option>
        </select>
      </label>
      {mode === "metadata" && (
        <>
          <input type="text" data-testid="sort-key" aria-label="Metadata key to sort by" spellcheck={false}
            placeholder="meta.speed" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
          <label class="check">
            <input type="checkbox" data-testid="sort-descending" checked={desc}
              onChange={(e) => apply((e.target as HTMLInputElement).checked)} />
            largest first
          </label>
          <button type="submit" data-testid="apply-sort">Sort</button>
        </>
      )}
    </form>
  );
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
