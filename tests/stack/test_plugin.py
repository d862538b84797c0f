"""The stack reaches the tests as an installed package: its pytest plugin defines the stack fixtures,
its command prints the same settings the fixtures and the services launcher use, and no test module
extends sys.path to import it."""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys

import pytest

from framevault.stack import pytest_plugin
from framevault.stack.local import stack_env as read_stack_env
from framevault.stack.services import service_env
from framevault.stack.settings import REPO_ROOT

TESTS = REPO_ROOT / "tests"
STACK_FIXTURES = ("stack_env", "settings", "stack_pki")


def test_the_stack_fixtures_come_from_the_installed_plugin(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.get_plugin("framevault-stack") is pytest_plugin
    for name in STACK_FIXTURES:
        (definition,) = request.session._fixturemanager.getfixturedefs(name, request.node) or ()
        assert definition.func.__module__ == pytest_plugin.__name__, name


def test_the_command_the_fixture_and_the_launcher_read_one_stack_env(stack_env: dict[str, str]) -> None:
    out = subprocess.run([sys.executable, "-m", "framevault.stack", "env"], check=True, capture_output=True,
                         text=True).stdout
    printed = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in out.splitlines())
    assert printed == stack_env == read_stack_env()
    launched = service_env({})
    assert {name: launched[name] for name in stack_env} == stack_env


def _extends_sys_path(node: ast.AST) -> bool:
    """``sys.path.insert(...)``, ``sys.path.append(...)``, ``sys.path.extend(...)`` or an assignment to ``sys.path``."""
    def is_sys_path(expr: ast.AST) -> bool:
        return (isinstance(expr, ast.Attribute) and expr.attr == "path" and isinstance(expr.value, ast.Name)
                and expr.value.id == "sys")

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("insert", "append", "extend") and is_sys_path(node.func.value)
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(is_sys_path(t.value if isinstance(t, ast.Subscript) else t) for t in targets)
    return False


def test_no_test_module_extends_sys_path() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        offenders += [f"{path.relative_to(REPO_ROOT)}:{node.lineno}" for node in ast.walk(tree) if
                      _extends_sys_path(node)]
    assert offenders == []


def test_the_sys_path_check_sees_each_form() -> None:
    forms = ["sys.path.insert(0, 'deploy/local')", "sys.path.append('x')", "sys.path[:0] = ['x']",
             "sys.path += ['x']"]
    for form in forms:
        assert any(_extends_sys_path(node) for node in ast.walk(ast.parse(form))), form
    assert not any(_extends_sys_path(node) for node in ast.walk(ast.parse("cmd = f'sys.path[:0] = {paths!r}'")))
