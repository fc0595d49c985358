"""The web dashboard (``/ui``): server-rendered pages for the Sở and agency sysadmins."""

from __future__ import annotations

from collector.web.routes import install, router

__all__ = ["install", "router"]
