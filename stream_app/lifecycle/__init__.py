"""Which model serves: verified bundles, the registry and the pre-deploy gate (pure)."""
