import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# The program's packages (config/, components/, renderers/) import from the repository root;
# the shared test helpers live in tests/unit, tests/integration and tests/engine.
for path in (TESTS.parent, TESTS / "unit", TESTS / "integration", TESTS / "engine"):
    sys.path.insert(0, str(path))


@pytest.fixture(scope="session")
def litellm_database():
    """One PostgreSQL server with LiteLLM's schema for the whole session (tests take fresh copies)."""
    from database_mode import database_server

    with database_server() as server:
        yield server


@pytest.fixture(scope="session")
def openbao():
    """One OpenBao dev server (the tests' real Vault API) for the whole session; tests reset it."""
    from openbao import openbao_server

    with openbao_server() as server:
        yield server


@pytest.fixture(scope="session")
def docker_engine():
    """The real Docker engine (tests/engine/engine.py), started if it is not running, stopped if started here."""
    from engine import docker_engine as engine_session

    with engine_session() as engine:
        yield engine


@pytest.fixture(scope="session")
def standin_images(docker_engine):
    """Every stand-in image (tests/engine/images.py), built once per run and content (two at a time)."""
    from images import build_all

    return build_all()
