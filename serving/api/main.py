"""The app as uvicorn imports it (``bourse serve``): settings from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from serving.api.app import create_app
from serving.settings import Settings


def app() -> FastAPI:
    """The factory uvicorn calls in each worker."""
    return create_app(Settings())
