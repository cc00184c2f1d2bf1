"""TEST STAND-IN (tests/engine/images/litellm): apply litellm-proxy-extras' migrations with psql.

In place of the real image's `prisma migrate deploy` (no schema engine here): one psql session takes
an advisory lock (replicas start together), records applied migrations in its own table, and applies
each missing one in order, stopping at the first error."""

import os
import subprocess
import sys
from pathlib import Path

import litellm_proxy_extras

folder = Path(litellm_proxy_extras.__file__).parent / "migrations"
files = sorted(p / "migration.sql" for p in folder.iterdir() if (p / "migration.sql").is_file())
script = ["SELECT pg_advisory_lock(727501);",
          "CREATE TABLE IF NOT EXISTS _standin_migrations (name text PRIMARY KEY, applied_at timestamptz DEFAULT now());"]
for sql in files:
    name = sql.parent.name.replace("'", "''")  # names may hold spaces ("20251122125322_Add ...")
    quoted = str(sql).replace("'", "\\'")
    script += [f"SELECT NOT EXISTS (SELECT 1 FROM _standin_migrations WHERE name = '{name}') AS todo \\gset",
               "\\if :todo", f"\\i '{quoted}'", f"INSERT INTO _standin_migrations (name) VALUES ('{name}');",
               "\\endif"]
url = os.environ["DATABASE_URL"]
done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "SET client_min_messages = warning", "-f", "-", "-d", url], input="\n".join(script) + "\n",
                      capture_output=True, text=True)
if done.returncode != 0:
    print("stand-in migrations failed:", done.stderr.strip()[-2000:], file=sys.stderr, flush=True)
    sys.exit(1)
print(f"stand-in migrations: {len(files)} in {folder.name}/ are applied", flush=True)
