"""The request path: validate, rate-limit, build features, score, scrub (no Faust, no Kafka)."""
