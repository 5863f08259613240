"""Real servers for the tests, started by the project's own code (see README "Development").

- `kafka.KafkaServer`: Apache Kafka, one KRaft node, from the jars `provision.sh` fetched;
- `postgres.PostgresServer`: PostgreSQL from Debian's packages, throwaway data directory;
- `prometheus.PrometheusServer`: Prometheus from Debian's packages, with a given config;
- `plugin`: the pytest fixtures; `__main__`: the devstack (`python -m tests.stack up|down|status`).
"""
