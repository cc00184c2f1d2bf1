"""TEST STAND-IN (tests/engine/images/litellm): LiteLLM's standalone migration entrypoint, at the path the
real image has it (/app/litellm/proxy/prisma_migration.py: what the Kubernetes platform's migration Job and
LiteLLM's own chart run, from WORKDIR /app). The real one runs `prisma migrate deploy` through the proxy
CLI; Prisma's schema engine cannot be had here, so this applies the same migration files with psql
(migrate.py), as the stand-in's `litellm` command does."""

import runpy

runpy.run_path("/opt/standin/migrate.py", run_name="__main__")
