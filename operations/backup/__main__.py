"""`python -m operations.backup <backup|restore|adopt|fetch> [options]`: what the scripts run."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
