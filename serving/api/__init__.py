"""The REST API (FastAPI): ``serving.api.app.create_app``."""
