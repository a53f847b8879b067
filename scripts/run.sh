#!/usr/bin/env bash
# `make run`: the web server plus a Celery worker with beat, on whatever the environment says
# (by default SQLite and a filesystem broker that needs no server).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
VAR="${COMEBACK_VAR_DIR:-var}"

"$BIN/celery" -A cxcore worker --beat --loglevel=warning --concurrency=1 \
  --schedule="$VAR/celerybeat-schedule" >"$VAR/celery.log" 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM

cat <<MSG

  Comeback is running at http://127.0.0.1:${PORT}/
  Celery worker + beat: pid ${worker}, log in $VAR/celery.log
  API docs: http://127.0.0.1:${PORT}/api/docs/

$(sed 's/^/  /' "$VAR/demo-credentials.txt" 2>/dev/null || true)

MSG
"$BIN/python" manage.py runserver "127.0.0.1:${PORT}"
