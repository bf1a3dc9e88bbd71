"""Watching the model: window statistics, drift, A/B comparison, alerts, health (pure)."""
