"""The catalog: the services opsbook knows about."""
