# The mrr command (worker, ingest API, reports) for docker-compose.yml's `worker` service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only what the installed package needs (pyproject's packages.find: ledger, projections, streams).
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY projections ./projections
COPY streams ./streams
RUN pip install . && useradd --system --uid 10001 --no-create-home mrr

USER mrr
EXPOSE 9108
CMD ["mrr", "worker"]
