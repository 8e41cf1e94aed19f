"""The WSGI entry point: ``gunicorn app:app``."""

from comms import create_app

app = create_app()
