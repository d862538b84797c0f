import { useEffect, useState } from "preact/hooks";
import { enc, get, params } from "../api";
import { ErrorBox, Page, Status, useApi } from "../common";
import type { Dataset, FrameSummary, Version } from "../model";
import { navigate, withQuery } from "../router";
import { Thumb, viewerPath } from "./Frames";

interface DiffAnswer {
  added?: FrameSummary[];
  changed?: FrameSummary[];
  removed?: FrameSummary[];
  next_page_token?: string;
}

type Change = "added" | "changed" | "removed";
const CHANGES: Change[] = ["added", "changed", "removed"];

/** Frames added, changed and removed from one version to another; each opens the viewer with both sides. */
export function Diff({ datasetId, query }: { datasetId: string; query: URLSearchParams }) {
  const from = query.get("from") ?? "";
  const to = query.get("to") ?? "";
  const here = `/datasets/${enc(datasetId)}/diff`;
  const dataset = useApi<Dataset>(`/api/datasets/${enc(datasetId)}`);
  const versions = useApi<{ versions?: Version[] }>(`/api/datasets/${enc(datasetId)}/versions`);
  const [result, setResult] = useState<Record<Change, FrameSummary[]>>({ added: [], changed: [], removed: [] });
  const [nextToken, setNextToken] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [loading, setLoading] = useState(false);

  async function load(pageToken: string | null) {
    setLoading(true);
    setError(null);
    try {
      const page = await get<DiffAnswer>(`/api/datasets/${enc(datasetId)}/diff${params({ from, to, page_token: pageToken })}`);
      setResult((previous) => {
        const start = pageToken ? previous : { added: [], changed: [], removed: [] };
        return { added: [...start.added, ...(page.added ?? [])], changed: [...start.changed, ...(page.changed ?? [])], removed: [...start.removed, ...(page.removed ?? [])] };
      });
      setNextToken(page.next_page_token || null);
    } catch (failure) {
      setError(failure as Error);
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => {
    setResult({ added: [], changed: [], removed: [] });
    if (from && to) void load(null);
  }, [from, to]);

  if (!dataset.data) return <Status loaded={dataset} what="Dataset" />;
  if (!versions.data) return <Status loaded={versions} what="Versions" />;
  const list = versions.data.versions ?? [];
  const names = new Map(list.map((v) => [v.id, v.name || v.id]));
  const pick = (which: "from" | "to") => (
    <select data-testid={`diff-${which}`} value={which === "from" ? from : to}
      onChange={(e) => navigate(here + withQuery(query, { [which]: (e.target as HTMLSelectElement).value }))}>
      <option value="">choose a version</option>
      {list.map((v) => <option key={v.id} value={v.id}>{v.name || v.id}</option>)}
    </select>
  );
  return (
    <Page crumbs={[{ label: "datasets", href: "/" }, { label: dataset.data.name, href: `/datasets/${enc(datasetId)}` }, { label: "diff" }]}>
      <h1>Compare versions</h1>
      <div class="toolbar">
        <label>from {pick("from")}</label>
        <label>to {pick("to")}</label>
      </div>
      {error && <ErrorBox error={error} />}
      {from && to && !error && (
        <div class="diff" data-testid="diff">
          {CHANGES.map((change) => (
            <section key={change} class={`diff-${change}`} data-testid={`diff-${change}`}>
              <h2>{change} <span class="muted">{result[change].length}{nextToken ? "+" : ""}</span></h2>
              <ul>
                {result[change].map((frame) => {
                  // A removed frame exists only in `from`: the viewer shows that side and says the other has none.
                  const opened = viewerPath(datasetId, to, frame.id, `?compare=${enc(from)}`);
                  return (
                    <li key={frame.id}>
                      <a class="diff-thumb" href={opened} tabIndex={-1} aria-hidden="true"><Thumb frame={frame} /></a>
                      <span>
                        <a data-testid="diff-frame" data-frame={frame.id} data-change={change} href={opened}>
                          {frame.id}
                        </a>{" "}
                        <span class="muted">{frame.context_id}</span>
                      </span>
                    </li>
                  );
                })}
              </ul>
            </section>
          ))}
          {loading && <p class="muted">Loading…</p>}
          {nextToken && !loading && <button data-testid="diff-more" onClick={() => load(nextToken)}>More changes</button>}
          <p class="muted">from {names.get(from) ?? from} to {names.get(to) ?? to}</p>
        </div>
      )}
    </Page>
  );
}
