import { useState } from "preact/hooks";
import { del, enc, post } from "../api";
import { ErrorBox, Page, Status, useApi } from "../common";
import type { Dataset, Permissions, Version } from "../model";
import { count, formatTime, statusName } from "../model";

interface VersionsAnswer {
  versions?: Version[];
  permissions?: Permissions;
}

interface TreeRow {
  version: Version;
  depth: number;
}

/** Versions in tree order: each under its first parent (the one whose frames it inherits), oldest first. */
export function treeRows(versions: Version[]): TreeRow[] {
  const byId = new Map(versions.map((v) => [v.id, v]));
  const children = new Map<string, Version[]>();
  const roots: Version[] = [];
  for (const version of versions) {
    const parent = version.parent_ids?.[0];
    if (parent && byId.has(parent)) children.set(parent, [...(children.get(parent) ?? []), version]);
    else roots.push(version);
  }
  const byCreation = (a: Version, b: Version) => (a.create_time ?? "").localeCompare(b.create_time ?? "");
  const rows: TreeRow[] = [];
  const visit = (version: Version, depth: number) => {
    rows.push({ version, depth });
    for (const child of (children.get(version.id) ?? []).sort(byCreation)) visit(child, depth + 1);
  };
  for (const root of roots.sort(byCreation)) visit(root, 0);
  return rows;
}

/** The version tree of a dataset, with the actions the caller may take on each version. */
export function Versions({ datasetId }: { datasetId: string }) {
  const base = `/api/datasets/${enc(datasetId)}`;
  const dataset = useApi<Dataset>(base);
  const versions = useApi<VersionsAnswer>(`${base}/versions`);
  const [actionError, setActionError] = useState<Error | null>(null);
  const [childOf, setChildOf] = useState<string | null>(null);
  const [childName, setChildName] = useState("");
  // Roles are per dataset, so any one version's answer says what the caller may do with all of them.
  const first = versions.data?.versions?.[0]?.id;
  const sample = useApi<Version>(first && !versions.data?.permissions ? `${base}/versions/${enc(first)}` : null);

  if (!dataset.data) return <Status loaded={dataset} what="Dataset" />;
  if (!versions.data) return <Status loaded={versions} what="Versions" />;
  const list = versions.data.versions ?? [];
  const names = new Map(list.map((v) => [v.id, v.name || v.id]));

  async function act(action: () => Promise<unknown>) {
    setActionError(null);
    try {
      await action();
      versions.reload();
    } catch (failure) {
      setActionError(failure as Error);
    }
  }

  function permissionsOf(version: Version): Permissions {
    return version.permissions ?? versions.data?.permissions ?? sample.data?.permissions ?? {};
  }

  const diffTarget = list.length >= 2 ? `/datasets/${enc(datasetId)}/diff` : null;
  return (
    <Page crumbs={[{ label: "datasets", href: "/" }, { label: dataset.data.name }]}>
      <h1>{dataset.data.name}</h1>
      {dataset.data.description && <p class="muted">{dataset.data.description}</p>}
      <div class="toolbar">{diffTarget && <a class="button" href={diffTarget}>Compare versions</a>}</div>
      {actionError && <ErrorBox error={actionError} />}
      <ol class="version-tree" data-testid="version-tree">
        {treeRows(list).map(({ version, depth }) => {
          const status = statusName(version.status);
          const allowed = permissionsOf(version);
          const path = `${base}/versions/${enc(version.id)}`;
          return (
            <li key={version.id} style={{ paddingLeft: `${depth * 1.5}rem` }} data-version={version.name}>
              <div class="version-row">
                <span class="tree-mark" aria-hidden="true">{depth ? "└─" : "●"}</span>
                <a href={`/datasets/${enc(datasetId)}/versions/${enc(version.id)}`}>{version.name || version.id}</a>
                <span class={`status ${status}`}>{status}</span>
                <span class="muted">{count(version.frame_count).toLocaleString()} frames · {formatTime(version.publish_time ?? version.update_time ?? version.create_time)}</span>
                {(version.parent_ids ?? []).length > 1 && (
                  <span class="muted">merge of {(version.parent_ids ?? []).map((p) => names.get(p) ?? p).join(" + ")}</span>
                )}
                <a href={`/datasets/${enc(datasetId)}/versions/${enc(version.id)}/statistics`}>statistics</a>
                <span class="actions">
                  {allowed.can_edit && status === "published" && (
                    <button onClick={() => { setChildOf(version.id); setChildName(""); }}>Create child</button>
                  )}
                  {allowed.can_publish && status === "draft" && (
                    <button onClick={() => act(() => post(`${path}/snapshot`))}>Snapshot</button>
                  )}
                  {allowed.can_publish && status === "draft" && (
                    <button onClick={() => confirm(`Publish ${version.name}? A published version never changes.`) && act(() => post(`${path}/publish`))}>Publish</button>
                  )}
                  {allowed.can_edit && status === "draft" && (
                    <button class="danger" onClick={() => confirm(`Delete the draft ${version.name} and the frames it wrote?`) && act(() => del(path))}>Delete draft</button>
                  )}
                </span>
              </div>
              {childOf === version.id && (
                <form class="inline-form" onSubmit={(e) => {
                  e.preventDefault();
                  void act(() => post(`${base}/versions`, { parent_id: version.id, name: childName.trim() })).then(() => setChildOf(null));
                }}>
                  <input autoFocus placeholder="Name of the new draft" value={childName} required
                    onInput={(e) => setChildName((e.target as HTMLInputElement).value)} />
                  <button type="submit">Create</button>
                  <button type="button" class="link" onClick={() => setChildOf(null)}>Cancel</button>
                </form>
              )}
            </li>
          );
        })}
      </ol>
      {list.length === 0 && <p class="muted">This dataset has no versions yet.</p>}
    </Page>
  );
}

