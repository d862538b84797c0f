// ROIs drawn over an image. Geometry in frame.proto is in pixels of the source image, so the SVG's
// viewBox is the image's pixel size and the SVG is stretched over the displayed image: a shape lands
// on the pixels it names whatever the display scale.

import type { Roi } from "./model";
import { labelColour } from "./model";

/** Shapes are filled at this opacity so a region reads as covered, not only outlined. */
export const ROI_FILL_OPACITY = 0.3;

export function roiLabel(roi: Roi): string {
  return (roi.labels ?? []).join(", ") || "(no label)";
}

export function roiColour(roi: Roi): string {
  return labelColour(roi.labels?.[0] ?? "");
}

export function hasGeometry(roi: Roi): boolean {
  return Boolean(roi.box || roi.polygon || roi.ellipse || roi.keypoints);
}

/** The kind of geometry, as the viewer's ROI list names it. */
export function roiKind(roi: Roi): string {
  if (roi.box) return "box";
  if (roi.polygon) return "polygon";
  if (roi.ellipse) return "ellipse";
  if (roi.keypoints) return "keypoints";
  if (roi.keypoints_3d) return "3D keypoints";
  if (roi.box_3d) return "3D box";
  return "frame label";
}

/** Whether the ROI belongs to the source: no `sources` means every source of the frame. */
export function roiOnSource(roi: Roi, sourceId: string): boolean {
  return !roi.sources?.length || roi.sources.includes(sourceId);
}

function pairs(flat: number[] | undefined): [number, number][] {
  const points: [number, number][] = [];
  const values = flat ?? [];
  for (let i = 0; i + 1 < values.length; i += 2) points.push([values[i], values[i + 1]]);
  return points;
}

function polygonPath(roi: Roi): string {
  return (roi.polygon?.parts ?? [])
    .map((part) => pairs(part.xy))
    .filter((points) => points.length >= 3)
    .map((points) => "M" + points.map(([x, y]) => `${x},${y}`).join("L") + "Z")
    .join(" ");
}

/** Where a shape's caption goes: its top-left corner, in image pixels. */
export function anchorOf(roi: Roi): [number, number] | null {
  if (roi.box) return [roi.box.x ?? 0, roi.box.y ?? 0];
  if (roi.ellipse) {
    const e = roi.ellipse;
    return [(e.cx ?? 0) - Math.max(e.rx ?? 0, e.ry ?? 0), (e.cy ?? 0) - Math.max(e.rx ?? 0, e.ry ?? 0)];
  }
  // A polygon's caption sits on its first part, so it does not float between separate parts.
  const points = roi.polygon ? pairs(roi.polygon.parts?.[0]?.xy) : pairs(roi.keypoints?.xy);
  if (!points.length) return null;
  return [Math.min(...points.map((p) => p[0])), Math.min(...points.map((p) => p[1]))];
}

/** The smallest size holding every shape, for a frame whose image size is unknown. */
export function extentOf(rois: Roi[]): [number, number] {
  let width = 1;
  let height = 1;
  for (const roi of rois) {
    const grow = (x: number, y: number) => {
      width = Math.max(width, x);
      height = Math.max(height, y);
    };
    if (roi.box) grow((roi.box.x ?? 0) + (roi.box.w ?? 0), (roi.box.y ?? 0) + (roi.box.h ?? 0));
    if (roi.ellipse) {
      const r = Math.max(roi.ellipse.rx ?? 0, roi.ellipse.ry ?? 0);
      grow((roi.ellipse.cx ?? 0) + r, (roi.ellipse.cy ?? 0) + r);
    }
    for (const part of roi.polygon?.parts ?? []) for (const [x, y] of pairs(part.xy)) grow(x, y);
    for (const [x, y] of pairs(roi.keypoints?.xy)) grow(x, y);
  }
  return [Math.ceil(width), Math.ceil(height)];
}

function Shape({ roi, colour, radius }: { roi: Roi; colour: string; radius: number }) {
  const common = { stroke: colour, fill: colour, "fill-opacity": ROI_FILL_OPACITY, "stroke-width": 2, "vector-effect": "non-scaling-stroke" };
  if (roi.box) {
    const b = roi.box;
    return <rect x={b.x ?? 0} y={b.y ?? 0} width={b.w ?? 0} height={b.h ?? 0} {...common} />;
  }
  if (roi.polygon) {
    // Even-odd: a part inside another part is a hole; separate parts are separate pieces.
    return <path d={polygonPath(roi)} fill-rule="evenodd" {...common} />;
  }
  if (roi.ellipse) {
    const e = roi.ellipse;
    // theta turns the ellipse counter-clockwise as the image is shown (SVG's rotate turns clockwise).
    const degrees = (-(e.theta ?? 0) * 180) / Math.PI;
    return (
      <ellipse cx={e.cx ?? 0} cy={e.cy ?? 0} rx={e.rx ?? 0} ry={e.ry ?? 0}
        transform={`rotate(${degrees} ${e.cx ?? 0} ${e.cy ?? 0})`} {...common} />
    );
  }
  if (roi.keypoints) {
    const visibility = roi.keypoints.visibility ?? [];
    return (
      <g>
        {pairs(roi.keypoints.xy).map(([x, y], i) =>
          visibility[i] === 0 ? null : (
            <circle key={i} cx={x} cy={y} r={radius} fill={colour} stroke="#000" stroke-width={1}
              vector-effect="non-scaling-stroke" fill-opacity={visibility[i] === 1 ? 0.45 : 1} />
          ),
        )}
      </g>
    );
  }
  return null;
}

export interface OverlayProps {
  rois: Roi[];
  width: number;
  height: number;
  /** Display pixels per image pixel, so captions and points keep their size on screen. */
  scale: number;
  selected: number | null;
  onSelect: (index: number) => void;
  /** Indexes into `rois` of the shapes to draw. */
  shown: number[];
}

export function Overlay({ rois, width, height, scale, selected, onSelect, shown }: OverlayProps) {
  const unit = 1 / Math.max(scale, 1e-6);
  return (
    <svg class="overlay" viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" data-testid="overlay">
      {shown.map((index) => {
        const roi = rois[index];
        const colour = roiColour(roi);
        const anchor = anchorOf(roi);
        const caption = roiLabel(roi) + (roi.confidence !== undefined ? ` ${(roi.confidence * 100).toFixed(0)}%` : "");
        return (
          <g key={index} class={"roi" + (selected === index ? " selected" : "")} data-roi={index}
            data-kind={roiKind(roi)} onClick={() => onSelect(index)}>
            <Shape roi={roi} colour={colour} radius={4 * unit} />
            {anchor && (
              <text x={anchor[0]} y={anchor[1] - 4 * unit} font-size={12 * unit} fill={colour}
                stroke="#000" stroke-width={3 * unit} paint-order="stroke">{caption}</text>
            )}
          </g>
        );
      })}
    </svg>
  );
}
