"""`python -m minicnn ...`: the same as the `minicnn` command (see minicnn/cli.py)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
