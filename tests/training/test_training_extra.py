"""The base SDK and CLI import without PyTorch and NumPy; the training package names the extra it needs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

WITHOUT_TORCH = textwrap.dedent("""
    import sys

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("torch", "numpy"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    import framevault.sdk
    import framevault.cli.main
    assert not [m for m in sys.modules if m.partition(".")[0] in ("torch", "numpy")], "imported without need"
    try:
        import framevault.sdk.training
    except ImportError as error:
        print(error)
""")


def test_base_sdk_imports_without_torch_and_training_names_the_extra() -> None:
    completed = subprocess.run([sys.executable, "-c", WITHOUT_TORCH], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "framevault.sdk.training needs PyTorch" in completed.stdout
    assert "pip install 'framevault[torch]'" in completed.stdout
