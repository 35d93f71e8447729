"""`python -m pytest_kexplain` runs the `kexplain` command."""

from pytest_kexplain.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
