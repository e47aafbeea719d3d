"""The `opensync-lite` script: `statusline` runs without loading the server (Flask, Peewee,
click), as Claude Code starts it after every turn; everything else is cli.py."""

import sys


def main():
    if sys.argv[1:2] == ["statusline"]:
        from .statusline import main as statusline

        sys.exit(statusline(sys.argv[2:]))
    from .cli import main as cli

    cli()


if __name__ == "__main__":
    main()
