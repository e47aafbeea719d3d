"""opensync-lite: a local, embeddable OpenSync server for AI coding-agent sessions."""

__version__ = "0.1.0"

__all__ = ["create_app", "init_app", "__version__"]


def __getattr__(name):
    # Loaded on first use, so a light command (statusline) never imports Flask or Peewee.
    if name in ("create_app", "init_app"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
