FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 COMEBACK_VAR_DIR=/var/lib/comeback
WORKDIR /app
COPY pyproject.toml README.md ./
COPY accounts accounts
COPY cxcore cxcore
COPY recovery recovery
RUN pip install --no-cache-dir .
COPY . .
RUN mkdir -p /var/lib/comeback \
 && DEBUG=false SECRET_KEY=build-only ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "cxcore.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
