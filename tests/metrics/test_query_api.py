"""The Prometheus-compatible query API over HTTP: shapes, parameters, errors, as Grafana sees."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from opsbook.metrics.backends import EmbeddedBackend
from opsbook.metrics.memory import MemoryStore
from opsbook.metrics.model import labels_from_mapping
from opsbook.metrics.promql import EngineOptions
from opsbook.metrics.views import query_api_router
from tests.metrics.http_server import serve_in_thread

T0 = 1_700_000_000_000  # ms
NOW = T0 + 600_000


def _store() -> MemoryStore:
    store = MemoryStore()
    up_a = labels_from_mapping({"__name__": "up", "job": "api", "instance": "a:80"})
    up_b = labels_from_mapping({"__name__": "up", "job": "db", "instance": "b:80"})
    requests = labels_from_mapping({"__name__": "requests_total", "job": "api", "code": "200"})
    series, stamps, values = [], [], []
    for k in range(41):  # every 15 s for 10 minutes
        t = T0 + k * 15_000
        series += [up_a, up_b, requests]
        stamps += [t, t, t]
        values += [1.0, 0.0 if k > 20 else 1.0, float(k * 30)]
    store.append(series, stamps, values)
    return store


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    backend = EmbeddedBackend(_store(), EngineOptions(max_samples=5_000))
    app = FastAPI()
    app.include_router(query_api_router(backend, now_ms=lambda: NOW))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def test_instant_query_returns_prometheus_vector_json(api: httpx.Client) -> None:
    response = api.get("/api/v1/query", params={"query": "up", "time": str(NOW / 1000)})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    by_job = {r["metric"]["job"]: r["value"] for r in body["data"]["result"]}
    assert by_job == {"api": [NOW / 1000, "1"], "db": [NOW / 1000, "0"]}
    assert {r["metric"]["__name__"] for r in body["data"]["result"]} == {"up"}


def test_query_without_time_uses_now_and_post_form_bodies_work(api: httpx.Client) -> None:
    response = api.post(
        "/api/v1/query",
        data={"query": "sum(rate(requests_total[5m]))"},
    )
    body = response.json()
    assert response.status_code == 200, body
    [row] = body["data"]["result"]
    assert row["metric"] == {}
    assert row["value"][0] == NOW / 1000
    assert float(row["value"][1]) == pytest.approx(2.0)  # 30 per 15 s


def test_scalar_and_string_results(api: httpx.Client) -> None:
    scalar = api.get("/api/v1/query", params={"query": "1 + 2", "time": "1700000000"}).json()
    assert scalar["data"] == {"resultType": "scalar", "result": [1700000000, "3"]}
    text = api.get("/api/v1/query", params={"query": '"hi"', "time": "1700000000.5"}).json()
    assert text["data"] == {"resultType": "string", "result": [1700000000.5, "hi"]}


def test_rfc3339_times_are_accepted(api: httpx.Client) -> None:
    response = api.get("/api/v1/query", params={"query": "1", "time": "2023-11-14T22:13:20Z"})
    assert response.json()["data"]["result"] == [1700000000, "1"]


def test_range_query_returns_a_matrix(api: httpx.Client) -> None:
    params = {
        "query": "up",
        "start": str(T0 / 1000 + 60),
        "end": str(T0 / 1000 + 600),
        "step": "60s",
    }
    body = api.get("/api/v1/query_range", params=params).json()
    assert body["data"]["resultType"] == "matrix"
    rows = {r["metric"]["job"]: r["values"] for r in body["data"]["result"]}
    assert [v for _, v in rows["api"]] == ["1"] * 10
    assert rows["db"][0] == [T0 / 1000 + 60, "1"]
    assert rows["db"][-1] == [T0 / 1000 + 600, "0"]
    assert len(rows["db"]) == 10


def test_syntax_error_is_bad_data_with_position(api: httpx.Client) -> None:
    response = api.get("/api/v1/query", params={"query": "sum(rate(up[5m])"})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error"
    assert body["errorType"] == "bad_data"
    assert body["error"].startswith('invalid parameter "query": 1:')
    assert "parse error" in body["error"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"query": "up", "start": "10", "end": "5", "step": "1"},
            "end timestamp must not be before",
        ),
        (
            {"query": "up", "start": "0", "end": "5", "step": "0"},
            "zero or negative query resolution",
        ),
        ({"query": "up", "start": "0", "end": "100000", "step": "1"}, "11,000 points"),
        ({"query": "up", "start": "soon", "end": "5", "step": "1"}, 'invalid parameter "start"'),
        ({"query": "up", "end": "5", "step": "1"}, 'invalid parameter "start"'),
    ],
)
def test_bad_range_parameters_are_bad_data(
    api: httpx.Client, params: dict[str, str], message: str
) -> None:
    response = api.get("/api/v1/query_range", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["errorType"] == "bad_data"
    assert message in body["error"]


def test_expensive_query_is_refused_not_run(api: httpx.Client) -> None:
    # max_samples is 5,000 in this fixture; a 1 s step over 10 minutes of three series exceeds it.
    params = {"query": "up + up", "start": str(T0 / 1000), "end": str(NOW / 1000), "step": "0.1"}
    response = api.get("/api/v1/query_range", params=params)
    assert response.status_code == 422
    assert response.json()["errorType"] == "execution"
    assert "too many samples" in response.json()["error"]


def test_series_labels_and_label_values(api: httpx.Client) -> None:
    series = api.get("/api/v1/series", params={"match[]": "up"}).json()
    assert sorted(s["instance"] for s in series["data"]) == ["a:80", "b:80"]
    both = api.get(
        "/api/v1/series", params=[("match[]", 'up{job="db"}'), ("match[]", "requests_total")]
    ).json()
    assert sorted(s["__name__"] for s in both["data"]) == ["requests_total", "up"]
    labels = api.get("/api/v1/labels").json()
    assert labels["data"] == ["__name__", "code", "instance", "job"]
    values = api.get("/api/v1/label/job/values").json()
    assert values["data"] == ["api", "db"]
    names = api.get("/api/v1/label/__name__/values", params={"match[]": '{job="api"}'}).json()
    assert names["data"] == ["requests_total", "up"]


def test_series_lookup_needs_a_selector(api: httpx.Client) -> None:
    response = api.get("/api/v1/series")
    assert response.status_code == 400
    assert response.json()["error"] == "no match[] parameter provided"
    empty = api.get("/api/v1/series", params={"match[]": '{job=~".*"}'})
    assert empty.status_code == 400
    assert empty.json()["errorType"] == "bad_data"


def test_invalid_label_name_in_path(api: httpx.Client) -> None:
    response = api.get("/api/v1/label/not-a-label/values")
    assert response.status_code == 400
    assert response.json()["error"] == 'invalid label name: "not-a-label"'


def test_buildinfo_and_openapi(api: httpx.Client) -> None:
    info = api.get("/api/v1/status/buildinfo").json()
    assert info["data"]["application"] == "opsbook"
    schema = api.get("/openapi.json").json()
    params = {p["name"] for p in schema["paths"]["/api/v1/query_range"]["get"]["parameters"]}
    assert params >= {"query", "start", "end", "step"}
