"""Relations between versions: shared lineage prefixes and merge bases.

Pure functions over version ids and parent links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def common_prefix_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the shared beginning of two lineages (first-parent chains
    from the root): its last element is their deepest common first-parent
    ancestor."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def ancestors(version_id: str, parents: Mapping[str, Sequence[str]]) -> set[str]:
    """``version_id`` and every version reachable through parent links."""
    seen: set[str] = set()
    stack = [version_id]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(parents.get(current, ()))
    return seen


def merge_base(
    ours: str, theirs: str, parents: Mapping[str, Sequence[str]], order: Mapping[str, object]
) -> str | None:
    """The nearest common ancestor of two versions in the parent DAG.

    Of the common ancestors, those that are no ancestor of another common
    ancestor are the best ones (as in git); ties (criss-cross merges) go to
    the latest by ``order`` (creation time), then the greater id. None when
    the versions share no ancestor.
    """
    common = ancestors(ours, parents) & ancestors(theirs, parents)
    if not common:
        return None
    dominated: set[str] = set()
    for candidate in common:
        for parent in parents.get(candidate, ()):
            dominated |= ancestors(parent, parents) & common
    best = common - dominated
    return max(best, key=lambda v: (order[v], v))  # type: ignore[index]
