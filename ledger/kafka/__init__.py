"""The Kafka ledger: topic administration, an idempotent writer and a partition reader.

aiokafka is imported inside these modules only; `import ledger` never pulls it in.
"""
