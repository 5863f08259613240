-- Run by the postgres image on its first start (empty data volume), before `mrr db upgrade`.
-- Grafana's PostgreSQL datasource (deploy/grafana/provisioning/datasources/postgres.yml) logs in
-- as this read-only role: SELECT on every table the postgres user creates later (the Alembic
-- migrations), in read-only transactions. Dashboards only read the projections.
CREATE ROLE grafana_reader LOGIN PASSWORD 'grafana_reader';
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE mrr TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
