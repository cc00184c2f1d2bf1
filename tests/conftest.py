import sys
from pathlib import Path

# The program's packages (config/, components/, renderers/) import from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
