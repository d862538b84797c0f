"""The tier's background builds (prebuild.py): started when collection ends, waited for by their tests,
and a failed one fails its tests with the build's output."""

from __future__ import annotations

import pytest

from framevault.stack.settings import REPO_ROOT as ROOT

from .prebuild import PREBUILDS, Build, BuildFailed

# Collection starts this build, as it starts the clients' (test_generated_clients.py).
BACKGROUND_BUILDS = {"self-check": lambda build: build.run(["echo", "built in the background"], ROOT)}


def test_collection_started_the_builds_the_collected_modules_name(request: pytest.FixtureRequest) -> None:
    assert "self-check" in PREBUILDS.builds  # before any test asked for it
    needed = {name for item in request.session.items if isinstance(item, pytest.Function)
              for name in getattr(item.module, "BACKGROUND_BUILDS", {})}
    assert needed <= PREBUILDS.builds.keys()
    assert PREBUILDS.result("self-check", BACKGROUND_BUILDS["self-check"]).strip() == "built in the background"


def test_a_failed_build_fails_its_tests_with_its_output() -> None:
    def broken(build: Build) -> str:
        build.run(["echo", "first step"], ROOT)
        return build.run(["sh", "-c", "echo 'what went wrong'; exit 3"], ROOT)

    with pytest.raises(pytest.fail.Exception) as failed:
        PREBUILDS.result("broken on purpose", broken)
    assert "exited with 3" in str(failed.value) and "what went wrong" in str(failed.value)
    with pytest.raises(BuildFailed):
        PREBUILDS.builds["broken on purpose"].wait()
