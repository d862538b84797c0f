"""Where the service processes spent their time: short summaries of profiler output.

``py-spy`` output (``--format raw``) is one collapsed stack per line
(``fn (file:line);fn (file:line);... <samples>``) of non-idle samples; a
cProfile output is a pstats file. Either is summarised as the functions with
the most own time and the framevault functions with the most total time.
"""

from __future__ import annotations

import io
import pstats
import re
from collections import Counter
from pathlib import Path

TOP = 20
_FRAME = re.compile(r"^(?P<fn>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SITE_PACKAGES = re.compile(r".*/site-packages/")
_OWN_CODE = re.compile(r".*/services/")
_OWN_PACKAGES = ("metadata/", "blob/", "common/", "framevault/")


def _is_own(frame: str) -> bool:
    """A frame of framevault code (py-spy names files relative to their sys.path entry)."""
    match = _FRAME.match(frame.strip())
    return bool(match) and ("/framevault/" in match["file"] or match["file"].startswith(_OWN_PACKAGES))


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = _OWN_CODE.sub("", _SITE_PACKAGES.sub("", match["file"]))
    return f"{match['fn']} ({path})"


def summarise_collapsed(path: Path) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        raw_frames = stack.split(";")
        own[_short(raw_frames[-1])] += count
        for name in {_short(f) for f in raw_frames if _is_own(f)}:
            total[name] += count
    if not samples:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {samples} busy samples",
             "  own time (leaf functions):"]
    lines += [f"    {100 * n / samples:5.1f}%  {name}" for name, n in own.most_common(TOP)]
    lines.append("  total time (framevault functions, callees included):")
    lines += [f"    {100 * n / samples:5.1f}%  {name}" for name, n in total.most_common(TOP)]
    return "\n".join(lines)


def summarise_pstats(path: Path) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats("framevault", TOP)
    return f"{path.name}:\n{out.getvalue()}"


def summary(path_text: str) -> str:
    path = Path(path_text)
    if not path.exists():
        return f"{path.name}: not written (see .bench/py-spy-*.log)"
    if path.suffix == ".pstats":
        return summarise_pstats(path)
    return summarise_collapsed(path)
