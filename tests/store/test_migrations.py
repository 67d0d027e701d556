"""The migrations: packaged with opsbook, matching the models, landing in the right schema."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import opsbook
from opsbook.store import (
    alembic_config,
    create_store_engine,
    head_revision,
    load_metadata,
    upgrade_database,
)
from opsbook.store.migrate import MIGRATIONS_DIR


def test_migrations_ship_inside_the_package() -> None:
    package = Path(opsbook.__file__).resolve().parent
    assert MIGRATIONS_DIR.is_relative_to(package)
    config = alembic_config()
    assert config.config_file_name is None  # no alembic.ini
    assert config.get_main_option("script_location") == str(MIGRATIONS_DIR)
    assert head_revision() == "0002_probes"


def test_migrations_match_the_models(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, load_metadata())
    assert diff == []


def test_constraint_names_follow_the_convention(migrated_engine: Engine) -> None:
    inspector = inspect(migrated_engine)
    assert inspector.get_pk_constraint("services")["name"] == "pk_services"
    assert [u["name"] for u in inspector.get_unique_constraints("services")] == ["uq_services_name"]


def test_downgrade_and_upgrade_again(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert "services" not in inspect(migrated_engine).get_table_names()
    result = upgrade_database(migrated_engine)
    assert (result.from_revision, result.to_revision) == (None, "0002_probes")
    assert "services" in inspect(migrated_engine).get_table_names()


@pytest.mark.postgres
def test_alembic_version_lands_in_the_search_path_schema(postgres_schema_url: str) -> None:
    engine = create_store_engine(postgres_schema_url)
    try:
        upgrade_database(engine)
        with engine.connect() as conn:
            schema = conn.execute(text("select current_schema()")).scalar_one()
            assert schema.startswith("t_")  # the fixture's fresh schema, not public
            found = conn.execute(
                text(
                    "select table_name from information_schema.tables "
                    "where table_schema = :schema order by table_name"
                ),
                {"schema": schema},
            ).scalars()
            assert list(found) == [
                "alembic_version",
                "probe_states",
                "service_state_changes",
                "services",
            ]
    finally:
        engine.dispose()


def _upgrade_in_a_process(url: str, barrier: Any, results: Any) -> None:
    engine = create_store_engine(url)
    try:
        engine.connect().close()  # connect first, so that the migrations start together
        barrier.wait(timeout=60)
        result = upgrade_database(engine)
        results.put((result.from_revision, result.to_revision))
    except Exception as exc:
        results.put(("error", str(exc)))
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_upgrades_take_turns(postgres_schema_url: str) -> None:
    # Replicas running `opsbook db upgrade` as they start, at the same moment. Processes, not
    # threads: that is what replicas are, and Alembic's context is global to a process.
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    workers = [
        ctx.Process(target=_upgrade_in_a_process, args=(postgres_schema_url, barrier, results))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    outcomes = Counter(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    # One replica migrates; the others wait for it, then find nothing to do.
    assert outcomes == Counter({(None, "0002_probes"): 1, ("0002_probes", "0002_probes"): 2})
