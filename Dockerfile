# The service image (no torch: the trainer runs elsewhere). The server distribution
# (packaging/server) plus the light client, which owns the `paced` command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY packaging ./packaging
COPY service ./service
COPY trainer_client ./trainer_client
COPY migrations ./migrations
RUN pip install --no-cache-dir "./packaging/server[postgres]" .
EXPOSE 8000
# Listening on every interface: it refuses to start without PACED_ADMIN_TOKEN (docs/operations.md).
CMD ["paced", "serve", "--host", "0.0.0.0", "--port", "8000"]
