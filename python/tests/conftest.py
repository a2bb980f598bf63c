"""Shared fixtures for the rwkv_engine tests.

Environment (the ctest entry sets them):
  RWKV_LIBRARY        the shared library librwkv.so (else found beside the package or by the loader)
  RWKV_CLI            rwkv-cli, whose output the binding must reproduce (tests that need it skip without it)
  RWKV_DEFAULT_MODEL  the converted default model (bytes tokenizer)
  RWKV_SHARED_DIR     ../shared with the official tiny models (optional; default ../shared beside the repository)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PYTHON_DIR.parent
FIXTURES_DIR = REPO_DIR / "tests" / "fixtures"

sys.path.insert(0, str(PYTHON_DIR))

import rwkv_engine  # noqa: E402


def fixture_models():
    """The committed tiny models of every version (tests/fixtures/fixtures.json)."""
    with open(FIXTURES_DIR / "fixtures.json") as f:
        return json.load(f)["models"]


def shared_dir():
    env = os.environ.get("RWKV_SHARED_DIR")
    if env:
        return Path(env) if Path(env).is_dir() else None
    p = REPO_DIR.parent / "shared"
    return p if (p / "models").is_dir() else None


@pytest.fixture(scope="session")
def engine():
    """rwkv_engine with its library loaded (a failure, not a skip, when it cannot be)."""
    try:
        rwkv_engine.library_path()
    except rwkv_engine.RwkvError as e:
        pytest.fail(str(e), pytrace=False)
    return rwkv_engine


class Cli:
    def __init__(self, path, threads):
        self.path = path
        self.threads = threads

    def run(self, *args, threads=True, check=True, input=None):
        """Runs rwkv-cli; returns the CompletedProcess (stdout and stderr as bytes)."""
        cmd = [self.path, *map(str, args)]
        if threads:
            cmd += ["--threads", str(self.threads)]
        proc = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check and proc.returncode != 0:
            message = proc.stderr.decode(errors="replace")
            raise AssertionError(f"{' '.join(cmd)} exited with {proc.returncode}: {message}")
        return proc


@pytest.fixture(scope="session")
def cli(engine):
    """rwkv-cli ($RWKV_CLI), run with the binding's thread count."""
    path = os.environ.get("RWKV_CLI")
    if not path:
        pytest.skip("RWKV_CLI is not set: no rwkv-cli to compare with")
    if not os.access(path, os.X_OK):
        pytest.fail(f"RWKV_CLI={path} is not an executable", pytrace=False)
    return Cli(path, engine.get_threads())


@pytest.fixture(scope="session")
def default_model(engine):
    try:
        path = engine.default_model_path()
    except engine.RwkvError as e:
        pytest.skip(f"no default model: {e}")
    return engine.Model(path)


@pytest.fixture(scope="session")
def tiny_v7(engine):
    return engine.Model(FIXTURES_DIR / "tiny-v7.0.pth")


@pytest.fixture(scope="session")
def tiny_v4(engine):
    return engine.Model(FIXTURES_DIR / "tiny-v4.pth")


@pytest.fixture(scope="session")
def shared():
    d = shared_dir()
    if d is None:
        pytest.skip("../shared not found next to the repository and RWKV_SHARED_DIR not set")
    return d
