"""The oncall receiver: keeps every Alertmanager notification as a page for the on-call engineer.

Run it with ``gunicorn 'obslab.oncall:create_app()'``; ``obslab.oncall.client`` reads the pages.
"""

from obslab.oncall.receiver import ConfigError, create_app

__all__ = ["ConfigError", "create_app"]
