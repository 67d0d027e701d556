"""An inventory service instrumented with every part of `opsbook.instrument`.

Configuration comes from the environment, as in the runbooks:
  DATABASE_URL   SQLAlchemy URL (default: a SQLite file under .opsbook/)
  REDIS_URL      optional; adds a Redis health check
  UPSTREAM_URL   optional; adds an HTTP dependency check
  APP_VERSION    reported by /health and service_info (default 1.0.0)
  SLOW_QUERY_MS  slow-query threshold (default 100)
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import opsbook.instrument
from opsbook.instrument import (
    CPUCheck,
    DiskCheck,
    HTTPCheck,
    JobCheck,
    MemoryCheck,
    RedisCheck,
    SQLAlchemyCheck,
)

VERSION = os.environ.get("APP_VERSION", "1.0.0")


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    Path(".opsbook").mkdir(exist_ok=True)
    return "sqlite:///.opsbook/example-inventory.db"


engine = sa.create_engine(_database_url())
opsbook.instrument.sqlalchemy(engine, threshold_ms=float(os.environ.get("SLOW_QUERY_MS", "100")))


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    quantity: Mapped[int] = mapped_column(default=0)


class ItemIn(BaseModel):
    name: str
    quantity: int = 0


# A scheduled job, like the runbooks' nightly imports: its health check fails if it stops running.
restock_job = JobCheck("restock", max_age=timedelta(seconds=90), warn_age=timedelta(seconds=45))


async def restock_every(seconds: float) -> None:
    while True:
        await asyncio.to_thread(_restock)
        restock_job.record_success()
        await asyncio.sleep(seconds)


def _restock() -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            sa.update(Item).where(Item.quantity < 5).values(quantity=Item.quantity + 10)
        )


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        if session.scalar(sa.select(sa.func.count()).select_from(Item)) == 0:
            session.add_all([Item(name="widget", quantity=3), Item(name="gadget", quantity=12)])
    job = asyncio.create_task(restock_every(30))
    yield
    job.cancel()


app = FastAPI(title="inventory (opsbook example)", version=VERSION, lifespan=lifespan)


@app.get("/items")
def list_items() -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.scalars(sa.select(Item).order_by(Item.id)).all()
        return [{"id": i.id, "name": i.name, "quantity": i.quantity} for i in rows]


@app.get("/items/{item_id}")
def get_item(item_id: int) -> dict[str, Any]:
    with Session(engine) as session:
        item = session.get(Item, item_id)
        if item is None:
            raise HTTPException(404, f"no item {item_id}")
        return {"id": item.id, "name": item.name, "quantity": item.quantity}


@app.post("/items", status_code=201)
def create_item(body: ItemIn) -> dict[str, Any]:
    with Session(engine) as session, session.begin():
        item = Item(name=body.name, quantity=body.quantity)
        session.add(item)
        session.flush()
        return {"id": item.id, "name": item.name, "quantity": item.quantity}


@app.get("/report")
def slow_report() -> dict[str, Any]:
    """A deliberately slow query, so the slow-query log has something to show."""
    with engine.connect() as conn:
        total = conn.execute(
            sa.text(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300000) "
                "SELECT sum(x) FROM n"
            )
        ).scalar_one()
    return {"total": total}


@app.get("/flaky")
async def flaky() -> dict[str, str]:
    """Fails one time in five: something for error-rate alerts to notice."""
    await asyncio.sleep(random.uniform(0.001, 0.3))
    if random.random() < 0.2:
        raise RuntimeError("the flaky endpoint flaked")
    return {"status": "ok"}


def _user_id(scope: Any) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-user-id":
            return str(value.decode("latin-1"))[:64]
    return None


checks: list[opsbook.instrument.HealthCheck] = [
    SQLAlchemyCheck(engine),
    DiskCheck(),
    MemoryCheck(),
    CPUCheck(),
    restock_job,
]
if os.environ.get("REDIS_URL"):
    checks.append(RedisCheck(os.environ["REDIS_URL"], critical=False))
if os.environ.get("UPSTREAM_URL"):
    checks.append(HTTPCheck(os.environ["UPSTREAM_URL"], name="upstream", critical=False))

app = opsbook.instrument(
    app,
    service="inventory",
    version=VERSION,
    environment=os.environ.get("APP_ENV", "development"),
    checks=checks,
    user_id=_user_id,
    slow_request_ms=500,
    log_file=os.environ.get("LOG_FILE"),
)
