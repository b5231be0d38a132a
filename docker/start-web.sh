#!/bin/sh
# The compose `web` service: migrate, make sure the admin account exists, then exec the server
# given as arguments. Safe on every restart: an existing account is left as it is (its password
# is not reset from the environment).
set -eu
cd "$(dirname "$0")/.."

python manage.py migrate --noinput

if [ -n "${DJANGO_SUPERUSER_USERNAME:-}" ]; then
    if [ -z "${DJANGO_SUPERUSER_PASSWORD:-}" ]; then
        echo "admin account not created: set DJANGO_SUPERUSER_PASSWORD (or run manage.py createsuperuser)" >&2
    elif python manage.py shell -c "import os, sys
from django.contrib.auth import get_user_model
User = get_user_model()
sys.exit(0 if User.objects.filter(username=os.environ['DJANGO_SUPERUSER_USERNAME']).exists() else 1)"; then
        echo "admin account ${DJANGO_SUPERUSER_USERNAME} exists; left unchanged"
    else
        # createsuperuser --noinput reads DJANGO_SUPERUSER_USERNAME, _EMAIL and _PASSWORD.
        python manage.py createsuperuser --noinput
    fi
fi

exec "$@"
