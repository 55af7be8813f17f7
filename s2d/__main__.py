"""`python -m s2d ...`: the command-line entry point."""
from s2d.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
