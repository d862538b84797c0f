// History-API routing: the gateway answers index.html for every non-/api path, so deep links work.

import { useEffect, useState } from "preact/hooks";

const CHANGE = "framevault:navigate";

export function currentPath(): string {
  return location.pathname + location.search;
}

export function navigate(to: string, replace = false): void {
  if (to === currentPath()) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new Event(CHANGE));
}

export interface Place {
  path: string;
  query: URLSearchParams;
}

/** The current path and query; re-renders on every navigation. */
export function useLocation(): Place {
  const [place, setPlace] = useState<Place>(() => ({ path: location.pathname, query: new URLSearchParams(location.search) }));
  useEffect(() => {
    const update = () => setPlace({ path: location.pathname, query: new URLSearchParams(location.search) });
    window.addEventListener("popstate", update);
    window.addEventListener(CHANGE, update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener(CHANGE, update);
    };
  }, []);
  return place;
}

/** Same-origin link clicks move through the router instead of loading the page again. */
export function interceptLinks(): void {
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const anchor = (event.target as Element | null)?.closest?.("a");
    if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
    const url = new URL(anchor.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
}

/** `query` with `changes` applied (null or "" removes a key). */
export function withQuery(query: URLSearchParams, changes: Record<string, string | null>): string {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === "") next.delete(key);
    else next.set(key, value);
  }
  const text = next.toString();
  return text ? `?${text}` : "";
}
