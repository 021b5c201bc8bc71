"""`python -m meltemi`: the same as the `meltemi` command."""

from .cli import main

if __name__ == "__main__":
    main()
