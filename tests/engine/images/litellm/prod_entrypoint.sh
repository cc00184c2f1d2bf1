#!/bin/sh
# TEST STAND-IN (tests/engine/images/litellm): the real image's docker/prod_entrypoint.sh runs the
# proxy with the container's arguments. The stack replaces this entrypoint with its own drain wrapper.
exec litellm "$@"
