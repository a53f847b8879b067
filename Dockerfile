FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 COMEBACK_VAR_DIR=/var/lib/comeback
RUN useradd --create-home --uid 1000 comeback
WORKDIR /app

# Dependencies first (their layer is cached until the lock changes): the runtime lock's exact
# versions and hashes (`make lock` writes it from pyproject.toml).
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

COPY manage.py gunicorn.conf.py ./
COPY accounts accounts
COPY connectors connectors
COPY cxcore cxcore
COPY imports imports
COPY partners partners
COPY recovery recovery
COPY webhooks webhooks
COPY templates templates
COPY static static
RUN mkdir -p /var/lib/comeback/imports \
 && DEBUG=false SECRET_KEY=build-only-not-secret ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
 && chown -R comeback /var/lib/comeback

USER comeback
EXPOSE 8000
CMD ["gunicorn", "cxcore.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
