"""``framevault version diff --limit N --page-token T``: a diff shown a page at a time."""

from __future__ import annotations

import uuid

from framevault.sdk import ClientSettings, DatasetVersion, SingleFrame

from .test_cli import run


async def test_version_diff_pages_with_limit_and_page_token(sdk: ClientSettings) -> None:
    dataset = f"cli-diff-pages-{uuid.uuid4().hex[:8]}"
    await DatasetVersion.acreate_new_dataset(dataset)
    draft = await DatasetVersion.aget_version(dataset)
    await draft.aadd_frames([SingleFrame(source="s3://bucket/a.jpg", width=8, height=6, id="a", context_id="c")], progress=False)
    await DatasetVersion.acreate_snapshot(dataset, "v1")
    current = await DatasetVersion.aget_version(dataset)
    await current.aadd_frames([SingleFrame(source=f"s3://bucket/{i}.jpg", width=8, height=6, id=f"n{i}",
                                           context_id="c", timestamp=i)
                               for i in range(5)], progress=False)

    first = await run(sdk, "version", "diff", dataset, "v1", "Current", "--limit", "3")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == ["+ n0", "+ n1", "+ n2"]
    marker = "more changes follow: --page-token "
    token = next(line for line in first.stderr.splitlines() if line.startswith(marker))[len(marker):]

    rest = await run(sdk, "version", "diff", dataset, "v1", "Current", "--page-token", token)
    assert rest.exit_code == 0, rest.output
    assert rest.stdout.splitlines() == ["+ n3", "+ n4"]
    assert marker not in rest.stderr and "2 added, 0 changed, 0 removed" in rest.stderr
