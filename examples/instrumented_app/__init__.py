"""A small FastAPI + SQLAlchemy service instrumented with opsbook (see main.py)."""
