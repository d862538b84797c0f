import { useEffect, useState } from "preact/hooks";
import { enc, params } from "../api";
import { ErrorBox, Page, Status, useApi } from "../common";
import type { Dataset, Version } from "../model";
import { count, labelColour } from "../model";
import { navigate, withQuery } from "../router";

interface StatisticsAnswer {
  label_counts?: { label: string; count: number | string }[];
  meta_distribution?: { value: unknown; count: number | string }[];
}

/** Label counts and one metadata key's distribution of a version, as bar charts. */
export function Statistics({ datasetId, versionId, query }: { datasetId: string; versionId: string; query: URLSearchParams }) {
  const base = `/api/datasets/${enc(datasetId)}/versions/${enc(versionId)}`;
  const here = `/datasets/${enc(datasetId)}/versions/${enc(versionId)}/statistics`;
  const key = query.get("meta_key") ?? "";
  const dataset = useApi<Dataset>(`/api/datasets/${enc(datasetId)}`);
  const version = useApi<Version>(base);
  const stats = useApi<StatisticsAnswer>(dataset.data && version.data ? `${base}/statistics${params({ meta_key: key })}` : null);
  const [keyInput, setKeyInput] = useState(key);
  useEffect(() => setKeyInput(key), [key]);

  if (!dataset.data) return <Status loaded={dataset} what="Dataset" />;
  if (!version.data) return <Status loaded={version} what="Version" />;
  const labels = (stats.data?.label_counts ?? []).map((l) => ({ name: l.label, value: count(l.count), colour: labelColour(l.label) }));
  const distribution = (stats.data?.meta_distribution ?? []).map((d) => ({
    name: typeof d.value === "string" ? d.value : JSON.stringify(d.value), value: count(d.count), colour: "#5ac8fa",
  }));
  return (
    <Page crumbs={[
      { label: "datasets", href: "/" },
      { label: dataset.data.name, href: `/datasets/${enc(datasetId)}` },
      { label: version.data.name || versionId, href: `/datasets/${enc(datasetId)}/versions/${enc(versionId)}` },
      { label: "statistics" },
    ]}>
      <h1>Statistics of {version.data.name || versionId}</h1>
      <p class="muted">{count(version.data.frame_count).toLocaleString()} frames</p>
      {stats.error && <ErrorBox error={stats.error} />}
      <h2>Label counts</h2>
      {stats.loading ? <p class="muted">Loading…</p> : <BarChart bars={labels} testid="label-chart" empty="No labels." />}
      <h2>Metadata distribution</h2>
      <form class="toolbar" onSubmit={(e) => { e.preventDefault(); navigate(here + withQuery(query, { meta_key: keyInput.trim() })); }}>
        <input placeholder="metadata key, e.g. weather" aria-label="Metadata key" value={keyInput} data-testid="meta-key"
          onInput={(e) => setKeyInput((e.target as HTMLInputElement).value)} />
        <button type="submit">Show</button>
      </form>
      {key && !stats.loading && <BarChart bars={distribution} testid="meta-chart" empty={`No frame has metadata key ${key}.`} />}
    </Page>
  );
}

interface Bar {
  name: string;
  value: number;
  colour: string;
}

/** A horizontal bar chart in plain SVG. */
function BarChart({ bars, testid, empty }: { bars: Bar[]; testid: string; empty: string }) {
  if (!bars.length) return <p class="muted">{empty}</p>;
  const shown = bars.slice(0, 50);
  const top = Math.max(...shown.map((b) => b.value), 1);
  const row = 24;
  const labelWidth = 180;
  const barWidth = 520;
  return (
    <svg class="chart" data-testid={testid} width={labelWidth + barWidth + 90} height={shown.length * row + 8} role="img"
      aria-label={shown.map((b) => `${b.name}: ${b.value}`).join(", ")}>
      {shown.map((bar, i) => (
        <g key={bar.name} transform={`translate(0 ${i * row + 4})`} data-bar={bar.name} data-value={bar.value}>
          <text x={labelWidth - 8} y={row / 2 + 4} text-anchor="end" class="chart-label">{bar.name.length > 24 ? bar.name.slice(0, 23) + "…" : bar.name}</text>
          <rect x={labelWidth} y={3} height={row - 6} width={Math.max(1, (bar.value / top) * barWidth)} fill={bar.colour} rx={2} />
          <text x={labelWidth + (bar.value / top) * barWidth + 6} y={row / 2 + 4} class="chart-value">{bar.value.toLocaleString()}</text>
        </g>
      ))}
    </svg>
  );
}
