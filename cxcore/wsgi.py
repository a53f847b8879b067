import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from cxcore.chunked import ChunkedBodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxcore.settings")

# Chunked request bodies are read (or refused with a 411), never taken for empty ones.
application = ChunkedBodies(
    get_wsgi_application(), max_bytes=lambda: settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**31
)
