"""Health probes of services: HTTP(S) with conditions, TCP, PostgreSQL, Redis, DNS."""
