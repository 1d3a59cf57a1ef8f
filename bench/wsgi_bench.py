"""The bench's WSGI entry: the real app, plus the reference page at /bench/reference.

    gunicorn -w 2 -b 127.0.0.1:PORT bench.wsgi_bench:app

Settings come from the environment as for ``wsgi:app`` (DATABASE_URL, SECRET_KEY,
INSTANCE_PATH, INCLUSIVE_ENV); the login rate limits are off (one client sends everything).
"""

from bench.reference import bp as reference_bp
from inclusive import create_app

app = create_app({"RATELIMIT_ENABLED": False})
app.register_blueprint(reference_bp)
