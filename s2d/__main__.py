"""`python -m s2d ...` (and the `s2d` script): the command-line entry point. The process is s2d's
own, so glibc is first told to keep freed memory (`s2d.inference.allocator`)."""
from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from s2d.inference.allocator import keep_freed_memory

    keep_freed_memory()
    from s2d.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
