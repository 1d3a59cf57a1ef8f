"""The WSGI entry point: ``gunicorn wsgi:app``."""

from inclusive import create_app

app = create_app()
