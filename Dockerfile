FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir -e . && python manage.py collectstatic --noinput
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
