// The JSON shapes of the gateway (protobuf JSON with the proto's field names: default values are left
// out, int64 arrive as strings) and small readers of them.

export type MetadataValue = {
  null_value?: string;
  bool_value?: boolean;
  int_value?: string;
  double_value?: number;
  string_value?: string;
  list_value?: { values?: MetadataValue[] };
  map_value?: Metadata;
};
export type Metadata = { fields?: Record<string, MetadataValue> };

export interface LabelCount {
  label: string;
  count: number | string;
}

export interface Dataset {
  id: string;
  name: string;
  description?: string;
  tags?: string[];
  meta?: Metadata;
  create_time?: string;
  update_time?: string;
  mask_labels?: MaskLabel[];
}

export interface DatasetCard extends Dataset {
  version_count?: number | string;
  newest_version?: { id: string; name?: string; status?: string; frame_count?: number | string } | null;
  top_labels?: LabelCount[];
  updated_at?: string;
}

export interface MaskLabel {
  value?: number[];
  labels?: string[];
}

export interface Permissions {
  can_edit?: boolean;
  can_publish?: boolean;
}

export interface Version {
  id: string;
  dataset_id?: string;
  name?: string;
  description?: string;
  status?: string;
  parent_ids?: string[];
  meta?: Metadata;
  mask_labels?: MaskLabel[];
  create_time?: string;
  update_time?: string;
  publish_time?: string;
  frame_count?: number | string;
  permissions?: Permissions;
}

export interface FrameSummary {
  id: string;
  context_id?: string;
  timestamp?: number | string;
  thumbnail_url?: string;
  roi_count?: number | string;
  labels?: string[];
  width?: number;
  height?: number;
}

export interface Box2D { x?: number; y?: number; w?: number; h?: number }
export interface Ellipse2D { cx?: number; cy?: number; rx?: number; ry?: number; theta?: number }
export interface Polygon2D { parts?: { xy?: number[] }[] }
export interface Keypoints2D { xy?: number[]; visibility?: number[] }

export interface Roi {
  id?: string;
  labels?: string[];
  confidence?: number;
  box?: Box2D;
  polygon?: Polygon2D;
  ellipse?: Ellipse2D;
  keypoints?: Keypoints2D;
  keypoints_3d?: { xyz?: number[] };
  box_3d?: Record<string, number>;
  sources?: string[];
  meta?: Metadata;
}

export interface Mask {
  id?: string;
  uri?: string;
  content_type?: string;
}

export interface Source {
  id?: string;
  uri?: string;
  content_type?: string;
  width?: number;
  height?: number;
  timestamp?: string;
  meta?: Metadata;
  preview?: { uri?: string };
  masks?: Mask[];
}

export interface Frame {
  id: string;
  context_id?: string;
  timestamp?: string;
  sources?: Source[];
  rois?: Roi[];
  meta?: Metadata;
  dataset_id?: string;
  version_id?: string;
  saved_in_version?: string;
  saved?: string;
  etag?: string;
}

export interface Caller {
  principal?: string;
  admin?: boolean;
}

export const DEFAULT_SOURCE_ID = "default";

/** A metadata value as plain JSON, for display. */
export function plainValue(value: MetadataValue): unknown {
  if ("null_value" in value) return null;
  if (value.bool_value !== undefined) return value.bool_value;
  if (value.int_value !== undefined) return Number(value.int_value);
  if (value.double_value !== undefined) return value.double_value;
  if (value.string_value !== undefined) return value.string_value;
  if (value.list_value) return (value.list_value.values ?? []).map(plainValue);
  if (value.map_value) return plainMetadata(value.map_value);
  // Every field at its default: protobuf JSON leaves the empty string, false and 0 out.
  return "";
}

export function plainMetadata(meta: Metadata | undefined): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta?.fields ?? {})) result[key] = plainValue(value);
  return result;
}

export function statusName(status: string | undefined): "draft" | "published" | "unknown" {
  if (status === "VERSION_STATUS_DRAFT" || status === "draft") return "draft";
  if (status === "VERSION_STATUS_PUBLISHED" || status === "published") return "published";
  return "unknown";
}

export function count(value: number | string | undefined | null): number {
  return value === undefined || value === null ? 0 : Number(value);
}

export function formatTime(value: string | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

/** A label's colour, the same on every page: a hue from the label's hash, spread by the golden angle so
 * labels seen together rarely look alike; saturated and light enough to read on photos. As #rrggbb. */
export function labelColour(label: string): string {
  let hash = 0;
  for (let i = 0; i < label.length; i++) hash = (hash * 31 + label.charCodeAt(i)) >>> 0;
  return hslHex((hash * 137.508) % 360, 0.85, 0.55);
}

function hslHex(hue: number, saturation: number, lightness: number): string {
  const a = saturation * Math.min(lightness, 1 - lightness);
  const channel = (n: number) => {
    const k = (n + hue / 30) % 12;
    const value = lightness - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(value * 255).toString(16).padStart(2, "0");
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}

export function rgb(value: number[] | undefined): string {
  const [r = 0, g = 0, b = 0] = value ?? [];
  return `rgb(${r}, ${g}, ${b})`;
}
