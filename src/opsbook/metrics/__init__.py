"""The metrics engine: data model, exposition parsing, scraping, stores, PromQL, query API."""
