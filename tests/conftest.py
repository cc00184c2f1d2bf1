import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# The program's packages (config/, components/, renderers/) import from the repository root;
# the shared test helpers live in tests/unit and tests/integration.
for path in (TESTS.parent, TESTS / "unit", TESTS / "integration"):
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
