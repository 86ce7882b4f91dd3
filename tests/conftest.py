import sys
from pathlib import Path

# why: --import-mode=importlib does not put the test directory on sys.path for helpers.
sys.path.insert(0, str(Path(__file__).resolve().parent))
