"""The app the real-server tests run under uvicorn (configured through environment variables)."""

from __future__ import annotations

import os

import sqlalchemy as sa
from fastapi import FastAPI

import opsbook.instrument
from opsbook.instrument import RedisCheck, SQLAlchemyCheck

app = FastAPI()


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("unhandled on purpose")


checks: list[opsbook.instrument.HealthCheck] = []
if os.environ.get("SERVED_DATABASE_URL"):
    engine = sa.create_engine(
        os.environ["SERVED_DATABASE_URL"], connect_args={"connect_timeout": 2}
    )
    checks.append(SQLAlchemyCheck(engine))
if os.environ.get("SERVED_REDIS_URL"):
    checks.append(RedisCheck(os.environ["SERVED_REDIS_URL"]))

app = opsbook.instrument(
    app,
    service="served",
    version="9.9.9",
    environment="test",
    checks=checks,
    log_file=os.environ.get("SERVED_LOG_FILE"),
)
