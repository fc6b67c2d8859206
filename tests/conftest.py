"""Shared fixtures. The process harness lives in harness.py (importable as ``harness``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
