"""Command-line interface (filled in below)."""


def main() -> None:
    raise SystemExit("not yet")
