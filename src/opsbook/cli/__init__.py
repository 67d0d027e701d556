"""The `opsbook` command line: one module per command group."""
