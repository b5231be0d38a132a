FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV PYTHONUNBUFFERED=1 OPS_STATIC_ROOT=/app/static
COPY . /app
# Static files are collected with the production settings the containers run with: WhiteNoise's
# manifest storage (hashed names, staticfiles.json) is what every admin page's {% static %} reads,
# so a collect under the development default would leave every admin page answering 500.
# No SECRET_KEY here: collectstatic needs none, and none is baked into the image.
RUN pip install --no-cache-dir -e . && OPS_ENVIRONMENT=production DEBUG=0 python manage.py collectstatic --noinput
EXPOSE 8000
