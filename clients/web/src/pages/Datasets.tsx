import { useEffect, useState } from "preact/hooks";
import { enc, get, params } from "../api";
import { ErrorBox, Page } from "../common";
import type { DatasetCard } from "../model";
import { count, formatTime, labelColour, statusName } from "../model";
import { navigate, withQuery } from "../router";

interface DatasetsPage {
  datasets?: DatasetCard[];
  next_page_token?: string;
}

/** Dataset cards, filtered by a name substring and a tag (both kept in the address). */
export function Datasets({ query }: { query: URLSearchParams }) {
  const name = query.get("name") ?? "";
  const tag = query.get("tag") ?? "";
  const [cards, setCards] = useState<DatasetCard[]>([]);
  const [nextToken, setNextToken] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [loading, setLoading] = useState(true);
  const [nameInput, setNameInput] = useState(name);
  const [tagInput, setTagInput] = useState(tag);

  async function load(pageToken: string | null) {
    setLoading(true);
    setError(null);
    try {
      const page = await get<DatasetsPage>("/api/datasets" + params({ name, tag, page_token: pageToken }));
      setCards((previous) => (pageToken ? [...previous, ...(page.datasets ?? [])] : page.datasets ?? []));
      setNextToken(page.next_page_token || null);
    } catch (failure) {
      setError(failure as Error);
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => {
    setNameInput(name);
    setTagInput(tag);
    void load(null);
  }, [name, tag]);

  function filter(event: Event) {
    event.preventDefault();
    navigate("/" + withQuery(query, { name: nameInput.trim(), tag: tagInput.trim() }));
  }

  return (
    <Page crumbs={[{ label: "datasets" }]}>
      <form class="toolbar" onSubmit={filter} role="search">
        <input type="search" placeholder="Name starts with…" aria-label="Filter by name" value={nameInput}
          onInput={(e) => setNameInput((e.target as HTMLInputElement).value)} />
        <input type="search" placeholder="Tag" aria-label="Filter by tag" value={tagInput}
          onInput={(e) => setTagInput((e.target as HTMLInputElement).value)} />
        <button type="submit">Filter</button>
        {(name || tag) && <a href="/">Clear</a>}
      </form>
      {error && <ErrorBox error={error} />}
      {!loading && !error && cards.length === 0 && <p class="muted">No datasets{name || tag ? " match this filter" : ""}.</p>}
      <div class="cards" data-testid="dataset-cards">
        {cards.map((card) => <Card key={card.id} card={card} />)}
      </div>
      {loading && <p class="muted">Loading…</p>}
      {nextToken && !loading && <button onClick={() => load(nextToken)}>More datasets</button>}
    </Page>
  );
}

function Card({ card }: { card: DatasetCard }) {
  const newest = card.newest_version;
  return (
    <article class="card" data-testid="dataset-card" data-dataset={card.name}>
      <h2><a href={`/datasets/${enc(card.id)}`}>{card.name}</a></h2>
      {card.description && <p class="muted clamp">{card.description}</p>}
      <div class="tags">
        {(card.tags ?? []).map((t) => <a key={t} class="tag" href={`/?tag=${enc(t)}`}>{t}</a>)}
      </div>
      <dl class="facts">
        <dt>Versions</dt><dd data-testid="version-count">{count(card.version_count)}</dd>
        <dt>Frames</dt>
        <dd data-testid="frame-count">
          {newest ? <>{count(newest.frame_count).toLocaleString()} <span class="muted">in {newest.name || newest.id} ({statusName(newest.status)})</span></> : "—"}
        </dd>
        <dt>Updated</dt><dd>{formatTime(card.updated_at ?? card.update_time)}</dd>
      </dl>
      {(card.top_labels ?? []).length > 0 && (
        <ul class="top-labels" aria-label="top labels">
          {(card.top_labels ?? []).map((l) => (
            <li key={l.label}><span class="swatch" style={{ background: labelColour(l.label) }} />{l.label} <span class="muted">{count(l.count).toLocaleString()}</span></li>
          ))}
        </ul>
      )}
      {newest && <a class="button" href={`/datasets/${enc(card.id)}/versions/${enc(newest.id)}`}>Browse frames</a>}
    </article>
  );
}
