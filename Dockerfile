# The mrr command for docker-compose.yml's services: migrate (`mrr db upgrade`), topics
# (`mrr topics create`), worker, api (`mrr serve`) and exporter. One image, one command each.
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
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home mrr \
    && mkdir /data && chown mrr /data

# A writable working directory (mrr.toml is looked up here; the embedded ledger would live here
# too, but every compose service is configured for Kafka and PostgreSQL).
ENV MRR_DATA_DIR=/data/.mrr
WORKDIR /data
USER mrr
# worker and exporter metrics, mrr serve
EXPOSE 9108 8080
CMD ["mrr", "worker"]
