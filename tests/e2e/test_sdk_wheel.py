"""The SDK as a user installs it: the framevault-api and framevault wheels in a
fresh virtual environment without the server code, their dependencies resolved
from the package index, at the lowest versions their ranges allow and at the
highest. From there the README's Python quickstart and ``framevault ingest``
run against the services ``make run`` starts.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from .flows import README, list_frames, read_blob, readme_block, run, unique, version_ref, write_image
from .launch import Endpoints
from .prebuild import PREBUILDS, Build
from .test_quickstarts import assert_sources_round_trip, coco_folder, ingest_summary

REPOSITORY = README.parent
API_DISTRIBUTION = REPOSITORY / "clients" / "python-api"
SDK_DISTRIBUTION = REPOSITORY / "clients" / "python"
# The extra the CLI's ingest needs (Pillow).
SDK_EXTRA = "images"
# Building wheels and resolving dependencies from the index takes a while on a busy machine.
INSTALL_TIMEOUT_SECONDS = 900
# Variables that would let the fresh environment see this checkout's packages.
LEAKING_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


def declared_requirements() -> list[Requirement]:
    """What the two client distributions require (the SDK's extra included), without each other."""
    requirements: list[Requirement] = []
    for distribution in (API_DISTRIBUTION, SDK_DISTRIBUTION):
        project = tomllib.loads((distribution / "pyproject.toml").read_text())["project"]
        declared = [*project["dependencies"], *project.get("optional-dependencies", {}).get(SDK_EXTRA, [])]
        requirements += [r for r in map(Requirement, declared) if not r.name.startswith("framevault")]
    return requirements


def floor(requirement: Requirement) -> str:
    """The lowest version ``requirement`` allows (its ``>=`` bound; every client requirement has one)."""
    (lowest,) = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    return lowest


def lowest_pins() -> list[str]:
    """``name==floor`` for every requirement; one name may appear in both distributions with the same floor."""
    floors: dict[str, set[str]] = {}
    for requirement in declared_requirements():
        floors.setdefault(requirement.name, set()).add(floor(requirement))
    assert all(len(v) == 1 for v in floors.values()), f"the distributions disagree on floors: {floors}"
    return [f"{name}=={version}" for name, (version,) in sorted(floors.items())]


def clean_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` without what would let the fresh environment see this checkout's packages."""
    return {key: value for key, value in env.items() if key not in LEAKING_VARIABLES}


VERSION_SETS = ("lowest", "highest")


def build_sdk_environments(build: Build) -> str:
    """The framevault-api and framevault wheels built from this checkout, then a fresh virtual environment
    per version set with only the two wheels and what they require, installed side by side. Returns the
    folder (``wheels/``, ``sdk-venv-<version set>/``)."""
    root = PREBUILDS.scratch("sdk-environments")
    build.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--wheel-dir", str(root / "wheels"), str(API_DISTRIBUTION), str(SDK_DISTRIBUTION)], REPOSITORY,
              timeout=INSTALL_TIMEOUT_SECONDS)
    built = sorted((root / "wheels").glob("*.whl"))
    if len(built) != 2:
        return str(root)  # the wheels fixture names what was built
    sdk_wheel, api_wheel = built
    pins = {"lowest": lowest_pins(), "highest": []}
    failures: list[BaseException] = []

    def install(version_set: str) -> None:
        venv = root / f"sdk-venv-{version_set}"
        try:
            build.run([sys.executable, "-m", "venv", str(venv)], root, timeout=INSTALL_TIMEOUT_SECONDS)
            build.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                       str(api_wheel), f"{sdk_wheel}[{SDK_EXTRA}]", *pins[version_set]], root,
                      env=clean_environment(dict(os.environ)), timeout=INSTALL_TIMEOUT_SECONDS)
        except BaseException as exc:  # noqa: BLE001 - raised by the build
            failures.append(exc)

    installs = [threading.Thread(target=install, args=(version_set,)) for version_set in VERSION_SETS]
    for thread in installs:
        thread.start()
    for thread in installs:
        thread.join()
    if failures:
        raise failures[0]
    return str(root)


# Built in the background from the start of the session (tests/e2e/prebuild.py).
BACKGROUND_BUILDS = {"sdk environments": build_sdk_environments}


@pytest.fixture(scope="module")
def sdk_environments() -> Path:
    return Path(PREBUILDS.result("sdk environments", build_sdk_environments))


@pytest.fixture(scope="module")
def wheels(sdk_environments: Path) -> list[Path]:
    """The framevault-api and framevault wheels, built from this checkout."""
    built = sorted((sdk_environments / "wheels").glob("*.whl"))
    assert [w.name.split("-")[0] for w in built] == ["framevault", "framevault_api"], built
    return built


@pytest.fixture(scope="module", params=VERSION_SETS)
def sdk_venv(request: pytest.FixtureRequest, wheels: list[Path], sdk_environments: Path) -> Path:
    """A fresh virtual environment with only the two wheels and what they require (one per version set)."""
    return sdk_environments / f"sdk-venv-{request.param}"


def installed_versions(venv: Path) -> dict[str, str]:
    code = ("import json, importlib.metadata as m; "
            "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))")
    done = run([str(venv / "bin" / "python"), "-c", code], clean_environment(dict(os.environ)), venv)
    return dict(json.loads(done.stdout))


def test_installs_within_the_declared_ranges(request: pytest.FixtureRequest, sdk_venv: Path) -> None:
    versions = installed_versions(sdk_venv)
    for requirement in declared_requirements():
        name = requirement.name.lower()
        assert name in versions, f"{name} is not installed"
        assert requirement.specifier.contains(versions[name]), (name, versions[name], str(requirement.specifier))
        if "lowest" in request.node.callspec.id:
            assert versions[name] == floor(requirement), (name, versions[name])
    # What only the services need stays out.
    assert not {"framevault-server", "motor", "pymongo", "minio", "structlog", "prometheus-client"} & set(versions)


def test_server_packages_are_not_importable(sdk_venv: Path, tmp_path: Path) -> None:
    python = str(sdk_venv / "bin" / "python")
    env = clean_environment(dict(os.environ))
    run([python, "-c", "import framevault.sdk, framevault.cli.main, framevault.api.blob_client"], env, tmp_path)
    for module in ("framevault.metadata", "framevault.blob", "framevault.common"):
        done = run([python, "-c", f"import {module}"], env, tmp_path, check=False)
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, (module, done.stderr)


def test_readme_python_quickstart_from_the_wheels(make_run: Endpoints, sdk_venv: Path, tmp_path: Path) -> None:
    image = write_image(tmp_path / "images" / "0001.jpg", (1280, 720), 1)
    dataset = unique("wheel-py-quickstart")
    code = readme_block("## Quickstart", "python").replace('"drives"', f'"{dataset}"')
    done = run([str(sdk_venv / "bin" / "python"), "-c", code], clean_environment(make_run.client_env()), tmp_path)
    assert "(['car'], [1])" in done.stdout, done.stdout

    frames = list_frames(make_run.metadata_stub(), version_ref(dataset, "v1"))
    assert len(frames) == 1
    assert [(list(r.labels), r.HasField("box")) for r in frames[0].rois] == [(["car"], True), (["daytime"], False)]
    assert read_blob(make_run.blob_stub(), frames[0].sources[0].uri) == image.read_bytes()


def test_cli_ingest_from_the_wheels(make_run: Endpoints, sdk_venv: Path, tmp_path: Path) -> None:
    files, _ = coco_folder(tmp_path, 6)
    dataset = unique("wheel-cli")
    framevault = str(sdk_venv / "bin" / "framevault")
    done = run([framevault, "ingest", "./images", "--dataset", dataset, "--coco", "./annotations/instances.json"],
               clean_environment(make_run.client_env()), tmp_path)
    assert ingest_summary(done.stdout) == {"images": len(files), "created": len(files), "failed": 0}, done.stdout

    frames = list_frames(make_run.metadata_stub(), version_ref(dataset))
    assert_sources_round_trip(make_run, frames, files)
