import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ApiError, enc, imageFailure } from "../api";
import { ErrorBox, NotFound, Page, Status, useApi } from "../common";
import type { Dataset, Frame, MaskLabel, Metadata, Roi, Source, Version } from "../model";
import { DEFAULT_SOURCE_ID, count, labelColour, plainMetadata, rgb } from "../model";
import { Overlay, extentOf, hasGeometry, roiKind, roiLabel, roiOnSource } from "../overlay";
import { navigate } from "../router";
import { GRID_RETURN_KEY, viewerPath } from "./Frames";

interface FrameAnswer {
  frame: Frame;
  neighbours?: { previous?: string | null; next?: string | null };
}

/** What the reader chose to see; shared by both sides of a comparison. */
interface Display {
  minConfidence: number;
  hidden: Set<string>;
  maskOpacity: number;
  showMasks: boolean;
  sideBySide: boolean;
  sourceIndex: number;
  selected: number | null;
}

const MASK_FILTER_ID = "fv-mask-alpha";

/** A frame with every annotation drawn over its image; `compare` shows another version's revision beside it. */
export function Viewer({ datasetId, versionId, frameId, query }: { datasetId: string; versionId: string; frameId: string; query: URLSearchParams }) {
  const compare = query.get("compare");
  const versionBase = `/api/datasets/${enc(datasetId)}/versions/${enc(versionId)}`;
  const dataset = useApi<Dataset>(`/api/datasets/${enc(datasetId)}`);
  const version = useApi<Version>(versionBase);
  const answer = useApi<FrameAnswer>(`${versionBase}/frames/${enc(frameId)}`);
  const other = useApi<Version>(compare ? `/api/datasets/${enc(datasetId)}/versions/${enc(compare)}` : null);
  const otherAnswer = useApi<FrameAnswer>(compare ? `/api/datasets/${enc(datasetId)}/versions/${enc(compare)}/frames/${enc(frameId)}` : null);
  const [display, setDisplay] = useState<Display>({
    minConfidence: 0, hidden: new Set(), maskOpacity: 0.5, showMasks: true, sideBySide: false, sourceIndex: 0, selected: null,
  });
  const update = (changes: Partial<Display>) => setDisplay((current) => ({ ...current, ...changes }));
  useEffect(() => update({ selected: null }), [frameId]);

  // While the next frame loads the previous answer is still shown; its neighbours are not this frame's.
  const neighbours = answer.data?.frame.id === frameId ? answer.data.neighbours : undefined;
  const extra = location.search;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.target instanceof HTMLInputElement && event.target.type !== "range" && event.target.type !== "checkbox") return;
      if (event.key === "ArrowLeft" && neighbours?.previous) navigate(viewerPath(datasetId, versionId, neighbours.previous, extra));
      else if (event.key === "ArrowRight" && neighbours?.next) navigate(viewerPath(datasetId, versionId, neighbours.next, extra));
      else if (event.key === "Escape") navigate(sessionStorage.getItem(GRID_RETURN_KEY) ?? `/datasets/${enc(datasetId)}/versions/${enc(versionId)}`);
      else return;
      event.preventDefault();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [neighbours?.previous, neighbours?.next, datasetId, versionId, extra]);

  if (!dataset.data) return <Status loaded={dataset} what="Dataset" />;
  if (!version.data) return <Status loaded={version} what="Version" />;
  if (compare && !other.data) return <Status loaded={other} what="Version" />;
  // In a comparison the frame may exist on one side only (added or removed).
  const missingHere = answer.error instanceof ApiError && answer.error.notFound;
  if (!answer.data && !(compare && missingHere && otherAnswer.data)) {
    if (missingHere) return <NotFound what="Frame" detail={`No frame ${frameId} in version ${version.data.name || versionId}.`} />;
    return <Status loaded={answer} what="Frame" />;
  }

  const crumbs = [
    { label: "datasets", href: "/" },
    { label: dataset.data.name, href: `/datasets/${enc(datasetId)}` },
    { label: version.data.name || versionId, href: `/datasets/${enc(datasetId)}/versions/${enc(versionId)}` },
    { label: frameId },
  ];
  const sides: { title: string; version: Version; loaded: FrameAnswer | null; error: Error | null }[] = compare && other.data
    ? [
      { title: `before: ${other.data.name || compare}`, version: other.data, loaded: otherAnswer.data, error: otherAnswer.error },
      { title: `after: ${version.data.name || versionId}`, version: version.data, loaded: answer.data, error: answer.error },
    ]
    : [{ title: "", version: version.data, loaded: answer.data, error: null }];
  const frames = sides.map((side) => side.loaded?.frame).filter((f): f is Frame => Boolean(f));
  const allRois = frames.flatMap((f) => f.rois ?? []);
  // Both sides' mask labels, each value once (a comparison usually has the same on both sides).
  const maskLabels = [...(version.data.mask_labels ?? []), ...(compare ? other.data?.mask_labels ?? [] : [])]
    .filter((entry, i, all) => all.findIndex((e) => (e.value ?? []).join() === (entry.value ?? []).join()) === i);
  const sources = frames[0]?.sources ?? [];

  return (
    <Page crumbs={crumbs} wide>
      <svg width="0" height="0" style={{ position: "absolute" }} aria-hidden="true">
        {/* Mask pixels that are black (no label) become transparent; every other value keeps its colour. */}
        <filter id={MASK_FILTER_ID} color-interpolation-filters="sRGB">
          <feColorMatrix type="matrix" values="1 0 0 0 0  0 1 0 0 0  0 0 1 0 0  255 255 255 0 0" />
        </filter>
      </svg>
      <div class="viewer" data-testid="viewer">
        <div class="stages">
          <div class="viewer-nav">
            <button data-testid="previous-frame" disabled={!neighbours?.previous} title="Previous frame of the context (←)"
              onClick={() => neighbours?.previous && navigate(viewerPath(datasetId, versionId, neighbours.previous, extra))}>← Previous</button>
            <button data-testid="next-frame" disabled={!neighbours?.next} title="Next frame of the context (→)"
              onClick={() => neighbours?.next && navigate(viewerPath(datasetId, versionId, neighbours.next, extra))}>Next →</button>
            {sources.length > 1 && (
              <>
                <label class="check">
                  <input type="checkbox" checked={display.sideBySide} data-testid="side-by-side" onChange={(e) => update({ sideBySide: (e.target as HTMLInputElement).checked })} />
                  sources side by side
                </label>
                {!display.sideBySide && (
                  <span class="tabs" role="tablist">
                    {sources.map((source, i) => (
                      <button key={i} role="tab" aria-selected={display.sourceIndex === i} data-testid="source-tab"
                        onClick={() => update({ sourceIndex: i })}>{source.id || DEFAULT_SOURCE_ID}</button>
                    ))}
                  </span>
                )}
              </>
            )}
          </div>
          <div class={"sides" + (sides.length > 1 ? " compare" : "")}>
            {sides.map((side, i) => (
              <section key={i} class="side" data-testid="side">
                {side.title && <h2 class="side-title">{side.title}</h2>}
                {side.loaded ? (
                  <FrameStages datasetId={datasetId} version={side.version} frame={side.loaded.frame} display={display} update={update} />
                ) : side.error instanceof ApiError && side.error.notFound ? (
                  <p class="muted absent" data-testid="absent">This frame is not in this version.</p>
                ) : side.error ? <ErrorBox error={side.error} /> : <p class="muted">Loading…</p>}
              </section>
            ))}
          </div>
        </div>
        <Panel frames={frames} rois={allRois} maskLabels={maskLabels} display={display} update={update}
          hasMasks={frames.some((f) => (f.sources ?? []).some((s) => (s.masks ?? []).length > 0))} />
      </div>
    </Page>
  );
}

function FrameStages({ datasetId, version, frame, display, update }: {
  datasetId: string; version: Version; frame: Frame; display: Display; update: (c: Partial<Display>) => void;
}) {
  const sources = frame.sources ?? [];
  const indexes = display.sideBySide ? sources.map((_, i) => i) : [Math.min(display.sourceIndex, Math.max(0, sources.length - 1))];
  const frameBase = `/api/datasets/${enc(datasetId)}/versions/${enc(version.id)}/frames/${enc(frame.id)}`;
  return (
    <div class={"stage-row" + (indexes.length > 1 ? " several" : "")}>
      {indexes.map((index) => sources[index] && (
        <SourceStage key={`${frame.id}/${index}`} frameBase={frameBase} index={index} source={sources[index]}
          rois={frame.rois ?? []} display={display} update={update} several={sources.length > 1} />
      ))}
    </div>
  );
}

/** One source's image, its masks and the ROIs that belong to it, in the image's pixel coordinates. */
function SourceStage({ frameBase, index, source, rois, display, update, several }: {
  frameBase: string; index: number; source: Source; rois: Roi[]; display: Display;
  update: (c: Partial<Display>) => void; several: boolean;
}) {
  const sourceId = source.id || DEFAULT_SOURCE_ID;
  const imageUrl = `${frameBase}/sources/${index}/image`;
  const [natural, setNatural] = useState<[number, number] | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [shownWidth, setShownWidth] = useState(0);
  const [maskFailures, setMaskFailures] = useState<Record<number, string>>({});
  const stage = useRef<HTMLDivElement>(null);

  useLayoutEffect(() => {
    if (!stage.current) return;
    const observer = new ResizeObserver(([entry]) => setShownWidth(entry.contentRect.width));
    observer.observe(stage.current);
    return () => observer.disconnect();
  }, []);

  const own = rois.map((roi, i) => ({ roi, i })).filter(({ roi }) => roiOnSource(roi, sourceId));
  // The image's own size wins; without an image, the size the frame records, else room for every shape.
  const [width, height] = natural ?? (source.width && source.height ? [source.width, source.height] : extentOf(own.map((o) => o.roi)));
  const shown = own.filter(({ roi }) => visible(roi, display)).map(({ i }) => i);

  return (
    <figure class="source" data-testid="source" data-source={sourceId}>
      {several && <figcaption>{sourceId}</figcaption>}
      <div ref={stage} class="stage" data-testid="stage" data-width={width} data-height={height}
        style={{ aspectRatio: `${width} / ${height}`, maxWidth: `calc((100vh - 10rem) * ${width / height})` }}>
        {failure === null ? (
          <img class="frame-image" data-testid="frame-image" src={imageUrl} alt={`${sourceId} of the frame`}
            onLoad={(e) => { const img = e.currentTarget as HTMLImageElement; setNatural([img.naturalWidth, img.naturalHeight]); }}
            onError={() => { void imageFailure(imageUrl, source.uri).then(setFailure); }} />
        ) : (
          <div class="image-missing" data-testid="image-missing" role="status">
            <strong>Image unavailable</strong>
            <span>{failure}</span>
            <span class="muted">The annotations are drawn on a blank {width}×{height} canvas.</span>
          </div>
        )}
        {display.showMasks && (source.masks ?? []).map((mask, m) => maskFailures[m] === undefined && (
          <img key={m} class="mask" data-testid="mask" data-mask={mask.id} alt="" src={`${frameBase}/sources/${index}/masks/${m}/image`}
            style={{ opacity: display.maskOpacity, filter: `url(#${MASK_FILTER_ID})` }}
            onError={() => { void imageFailure(`${frameBase}/sources/${index}/masks/${m}/image`, mask.uri).then((why) => setMaskFailures((f) => ({ ...f, [m]: why }))); }} />
        ))}
        <Overlay rois={rois} width={width} height={height} scale={shownWidth / width} shown={shown}
          selected={display.selected} onSelect={(i) => update({ selected: i })} />
      </div>
      {Object.entries(maskFailures).map(([m, why]) => (
        <p key={m} class="error" data-testid="mask-missing">Mask {source.masks?.[Number(m)]?.id || m} unavailable: {why}</p>
      ))}
    </figure>
  );
}

function visible(roi: Roi, display: Display): boolean {
  if (!hasGeometry(roi)) return false;
  if (roi.confidence !== undefined && roi.confidence < display.minConfidence) return false;
  const labels = roi.labels ?? [];
  return labels.length === 0 ? !display.hidden.has("") : labels.some((label) => !display.hidden.has(label));
}

function Panel({ frames, rois, maskLabels, display, update, hasMasks }: {
  frames: Frame[]; rois: Roi[]; maskLabels: MaskLabel[]; display: Display; update: (c: Partial<Display>) => void; hasMasks: boolean;
}) {
  const frame = frames[frames.length - 1];
  const labelCounts = new Map<string, number>();
  for (const roi of rois) for (const label of roi.labels?.length ? roi.labels : [""]) labelCounts.set(label, (labelCounts.get(label) ?? 0) + 1);
  const frameLabels = rois.filter((roi) => !hasGeometry(roi) && !roi.keypoints_3d && !roi.box_3d);
  const selected = display.selected !== null ? frame?.rois?.[display.selected] : undefined;
  const source = frame?.sources?.[display.sourceIndex];
  const toggle = (label: string) => {
    const hidden = new Set(display.hidden);
    if (hidden.has(label)) hidden.delete(label);
    else hidden.add(label);
    update({ hidden });
  };
  return (
    <aside class="panel" data-testid="panel">
      {frame && (
        <section>
          <h2>Frame</h2>
          <dl class="facts">
            <dt>Id</dt><dd class="mono" data-testid="frame-id">{frame.id}</dd>
            <dt>Context</dt><dd class="mono">{frame.context_id}</dd>
            <dt>Timestamp</dt><dd>{count(frame.timestamp)} ms</dd>
            <dt>Sources</dt><dd>{(frame.sources ?? []).length}</dd>
          </dl>
          <CopyLink />
          {frameLabels.length > 0 && (
            <p class="chips" data-testid="frame-labels">
              {frameLabels.map((roi, i) => <span key={i} class="chip" style={{ borderColor: labelColour(roi.labels?.[0] ?? "") }}>{roiLabel(roi)}{roi.confidence !== undefined ? ` ${(roi.confidence * 100).toFixed(0)}%` : ""}</span>)}
            </p>
          )}
        </section>
      )}
      <section>
        <h2>Labels</h2>
        <ul class="label-toggles">
          {[...labelCounts.entries()].sort((a, b) => b[1] - a[1]).map(([label, n]) => (
            <li key={label}>
              <label class="check">
                <input type="checkbox" checked={!display.hidden.has(label)} data-testid="label-toggle" data-label={label} onChange={() => toggle(label)} />
                <span class="swatch" data-testid="label-colour" data-label={label} data-colour={labelColour(label)} style={{ background: labelColour(label) }} />
                {label || "(no label)"} <span class="muted">{n}</span>
              </label>
            </li>
          ))}
        </ul>
        <label class="slider">
          Minimum confidence <output data-testid="min-confidence-value">{display.minConfidence.toFixed(2)}</output>
          <input type="range" min={0} max={1} step={0.01} value={display.minConfidence} data-testid="min-confidence"
            onInput={(e) => update({ minConfidence: Number((e.target as HTMLInputElement).value) })} />
        </label>
      </section>
      {hasMasks && (
        <section>
          <h2>Masks</h2>
          <label class="check">
            <input type="checkbox" checked={display.showMasks} data-testid="show-masks" onChange={(e) => update({ showMasks: (e.target as HTMLInputElement).checked })} /> show masks
          </label>
          <label class="slider">
            Opacity <output>{display.maskOpacity.toFixed(2)}</output>
            <input type="range" min={0} max={1} step={0.05} value={display.maskOpacity} data-testid="mask-opacity"
              onInput={(e) => update({ maskOpacity: Number((e.target as HTMLInputElement).value) })} />
          </label>
          <ul class="legend" data-testid="mask-legend">
            {maskLabels.map((entry, i) => (
              <li key={i}><span class="swatch" style={{ background: rgb(entry.value) }} />{(entry.labels ?? []).join(", ")} <span class="muted mono">{(entry.value ?? []).join(",")}</span></li>
            ))}
          </ul>
        </section>
      )}
      {frame && (
        <section>
          <h2>ROIs</h2>
          <ol class="roi-list" data-testid="roi-list">
            {(frame.rois ?? []).map((roi, i) => (
              <li key={i} class={display.selected === i ? "selected" : ""}>
                <button class="link" onClick={() => update({ selected: display.selected === i ? null : i })}>
                  <span class="swatch" style={{ background: labelColour(roi.labels?.[0] ?? "") }} />
                  {roiLabel(roi)} <span class="muted">{roiKind(roi)}{roi.confidence !== undefined ? ` · ${roi.confidence.toFixed(2)}` : ""}{roi.sources?.length ? ` · ${roi.sources.join(", ")}` : ""}</span>
                </button>
              </li>
            ))}
          </ol>
        </section>
      )}
      {selected && <MetaTable title="ROI metadata" meta={selected.meta} />}
      {frame && <MetaTable title="Frame metadata" meta={frame.meta} />}
      {source && <MetaTable title={`Source ${source.id || DEFAULT_SOURCE_ID}`} meta={source.meta}
        extra={{ uri: source.uri, content_type: source.content_type, size: source.width ? `${source.width}×${source.height}` : undefined }} />}
    </aside>
  );
}

function MetaTable({ title, meta, extra = {} }: { title: string; meta: Metadata | undefined; extra?: Record<string, unknown> }) {
  const entries = Object.entries({ ...extra, ...plainMetadata(meta) }).filter(([, value]) => value !== undefined);
  return (
    <section>
      <h2>{title}</h2>
      {entries.length === 0 ? <p class="muted">none</p> : (
        <table class="meta">
          <tbody>
            {entries.map(([key, value]) => (
              <tr key={key}><th>{key}</th><td class="mono">{typeof value === "string" ? value : JSON.stringify(value)}</td></tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function CopyLink() {
  const [copied, setCopied] = useState(false);
  const field = useRef<HTMLInputElement>(null);
  async function copy() {
    try {
      await navigator.clipboard.writeText(location.href);
    } catch {
      // No clipboard access (plain HTTP on another host): leave the link selected for Ctrl-C.
      field.current?.select();
    }
    setCopied(true);
  }
  return (
    <div class="copy-link">
      <input ref={field} readOnly value={location.href} aria-label="Link to this frame" data-testid="frame-link" onFocus={(e) => (e.target as HTMLInputElement).select()} />
      <button onClick={copy}>{copied ? "Copied" : "Copy link"}</button>
    </div>
  );
}
