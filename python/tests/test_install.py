"""pip installs the package offline, and the installed package finds the library through
RWKV_LIBRARY, beside itself, or the system's loader path."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES_DIR, PYTHON_DIR

CHECK = (
    "import rwkv_engine, sys\n"
    "print(rwkv_engine.__file__)\n"
    "print(rwkv_engine.library_path())\n"
    f"m = rwkv_engine.Model({str(FIXTURES_DIR / 'tiny-v7.0.pth')!r})\n"
    "from rwkv_engine.model import RWKV\n"
    "from rwkv_engine.utils import PIPELINE, PIPELINE_ARGS\n"
    "print(len(m.forward([72, 105], None)[0]))\n"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory, engine):
    """The package as `pip install --no-build-isolation --no-index --target` installs it
    (from a copy of python/, so that the build leaves nothing in the source tree)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "src"
    source.mkdir()
    shutil.copy(PYTHON_DIR / "pyproject.toml", source)
    shutil.copy(PYTHON_DIR / "README.md", source)
    shutil.copytree(PYTHON_DIR / "rwkv_engine", source / "rwkv_engine",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    target = root / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-index", "--no-deps",
         "--disable-pip-version-check", "--no-cache-dir", "--target", str(target), str(source)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root)
    assert proc.returncode == 0, proc.stdout
    assert (target / "rwkv_engine" / "_lib.py").exists()
    return target


def run_installed(target, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("RWKV_LIBRARY", "PYTHONPATH", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = str(target)
    env.update(env_changes)
    # Run outside the source tree, so that python/ cannot be imported by accident.
    return subprocess.run([sys.executable, "-c", CHECK], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, cwd=target.parent)


def test_found_through_rwkv_library(installed, engine):
    proc = run_installed(installed, RWKV_LIBRARY=engine.library_path())
    assert proc.returncode == 0, proc.stderr
    file, library, n_vocab = proc.stdout.split("\n")[:3]
    assert file.startswith(str(installed))
    assert library == engine.library_path() and n_vocab == "256"


def test_found_beside_the_package(installed, engine):
    beside = installed / "rwkv_engine" / "librwkv.so"
    os.symlink(os.path.abspath(engine.library_path()), beside)
    try:
        proc = run_installed(installed)
    finally:
        beside.unlink()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[1] == str(beside)


def test_found_on_the_loader_path(installed, engine):
    proc = run_installed(installed, LD_LIBRARY_PATH=os.path.dirname(os.path.abspath(engine.library_path())))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[1] == "librwkv.so"


def test_not_found_names_the_places_tried(installed):
    probe = subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL('librwkv.so')"],
                           env={k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if probe.returncode == 0:
        pytest.skip("librwkv.so is installed on the system loader path")
    proc = run_installed(installed)
    assert proc.returncode != 0
    assert "cannot find the rwkv shared library" in proc.stderr and "RWKV_LIBRARY" in proc.stderr
