// Calls of the gateway's JSON API (services/framevault/gateway/API.md).
//
// The session is an HttpOnly cookie the gateway sets; scripts never see the token. Every request that
// changes something carries the fv_csrf cookie's value in X-CSRF-Token (double submit).

import { navigate, currentPath } from "./router";

export interface FieldViolation {
  field: string;
  description: string;
}

/** An error answer of the gateway: the gRPC code, its message, bad fields, and a query position. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: FieldViolation[] = [],
    readonly position: number | null = null,
  ) {
    super(message);
  }

  get notFound(): boolean {
    return this.status === 404;
  }
}

const CSRF_COOKIE = "fv_csrf";

function cookie(name: string): string | null {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** The sign-in page, coming back to `next` afterwards. */
export function signInPath(next: string = currentPath()): string {
  return next.startsWith("/sign-in") ? "/sign-in" : `/sign-in?next=${encodeURIComponent(next)}`;
}

async function errorOf(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page, an empty body): the status alone says what happened.
  }
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  if (!error) return new ApiError(response.status, "HTTP_" + response.status, response.statusText || "request failed");
  const position = typeof error.position === "number" ? error.position : null;
  return new ApiError(
    response.status,
    String(error.code ?? "UNKNOWN"),
    String(error.message ?? response.statusText),
    Array.isArray(error.fields) ? (error.fields as FieldViolation[]) : [],
    position,
  );
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    const token = cookie(CSRF_COOKIE);
    if (token) headers["X-CSRF-Token"] = token;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const error = await errorOf(response);
    // Without a valid session every page sends the visitor to sign in, and back here afterwards.
    if (error.status === 401 && !path.startsWith("/api/session")) navigate(signInPath(), true);
    throw error;
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const get = <T>(path: string) => request<T>("GET", path);
export const post = <T>(path: string, body: unknown = {}) => request<T>("POST", path, body);
export const del = <T>(path: string) => request<T>("DELETE", path);

/** A query string of the given parameters, leaving out empty ones. */
export function params(values: Record<string, string | number | boolean | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || value === null || value === "" || value === false) continue;
    search.set(key, value === true ? "1" : String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Why an image URL of the gateway gave no image: the gateway's error, or the place it sent the browser to. */
export async function imageFailure(url: string, sourceUri: string | undefined): Promise<string> {
  try {
    const response = await fetch(url, { credentials: "same-origin", redirect: "manual" });
    if (response.type === "opaqueredirect" || (response.status >= 300 && response.status < 400)) {
      // The gateway found the image and sent the browser on; the place it was sent to gave no image.
      return `the image's download link (${sourceUri ?? "its source"}) gave no image: unreachable, expired, or not an image this page may show`;
    }
    if (!response.ok) return (await errorOf(response)).message;
    return "the browser could not decode the image";
  } catch {
    return "the gateway could not be reached";
  }
}

export const enc = encodeURIComponent;
