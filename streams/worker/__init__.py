"""The live projector: a Faust worker that keeps the PostgreSQL projections current from Kafka."""
