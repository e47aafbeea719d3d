"""opensync-lite: a local, embeddable OpenSync server for AI coding-agent sessions."""

__version__ = "0.1.0"

from .app import create_app, init_app  # noqa: E402

__all__ = ["create_app", "init_app", "__version__"]
