"""gunictl: placeholder until the control CLI lands."""

import sys


def main() -> None:
    sys.exit("gunictl: not built yet")
