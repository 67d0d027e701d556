"""Tables of the embedded store's DuckDB file.

- ``store_meta``: format version and the chunk duration, fixed when the file is created.
- ``series``: the series index (id, label set as JSON), loaded into memory at open.
- ``head``: recent samples in arrival order, one row each, values as float64 bit patterns (so
  every NaN payload survives). Samples of the bucket still being written land here.
- ``chunks``: one row per series and closed time bucket: the samples as a list of timestamp
  deltas and a list of values, plus the bucket's rollup (the ``RangeSummary`` fields). Rows are
  inserted bucket by bucket, so DuckDB's min/max zone maps on ``bucket`` skip old data, and the
  list contents of one series sit together, which DuckDB's ALP and bit-packing compress well.
"""

from __future__ import annotations

FORMAT_VERSION = 1

CREATE_TABLES = """
CREATE TABLE store_meta(key VARCHAR NOT NULL, value VARCHAR NOT NULL);
CREATE TABLE series(id INTEGER NOT NULL, labels VARCHAR NOT NULL);
CREATE TABLE head(series_id INTEGER NOT NULL, t BIGINT NOT NULL, v BIGINT NOT NULL,
                  seq BIGINT NOT NULL);
CREATE TABLE chunks(
    series_id INTEGER NOT NULL,
    bucket BIGINT NOT NULL,
    t_first BIGINT NOT NULL,
    t_last BIGINT NOT NULL,
    n INTEGER NOT NULL,
    count INTEGER NOT NULL,
    first_t BIGINT NOT NULL,
    first_v DOUBLE,
    last_t BIGINT NOT NULL,
    last_v DOUBLE,
    sum DOUBLE,
    min DOUBLE,
    max DOUBLE,
    increase DOUBLE,
    resets INTEGER NOT NULL,
    changes INTEGER NOT NULL,
    int_deltas BOOLEAN NOT NULL,
    base DOUBLE NOT NULL,
    deltas BIGINT[] NOT NULL,
    vals DOUBLE[] NOT NULL,
    nan_pos INTEGER[],
    nan_bits BIGINT[]
);
"""

TABLES = ("store_meta", "series", "head", "chunks")

ROLLUP_COLUMNS = (
    "count",
    "first_t",
    "first_v",
    "last_t",
    "last_v",
    "sum",
    "min",
    "max",
    "increase",
    "resets",
    "changes",
)

# Inserts the chunks registered as ``new_chunks`` (one row per chunk), ``new_samples`` (one
# row per sample, ``chunk`` = index into new_chunks) and ``new_nans``. Rows go in bucket order.
INSERT_CHUNKS = f"""
INSERT INTO chunks
SELECT c.series_id, c.bucket, c.t_first, c.t_last, c.n,
       {", ".join("c." + name for name in ROLLUP_COLUMNS)},
       c.int_deltas, c.base, s.deltas, s.vals, x.nan_pos, x.nan_bits
FROM new_chunks c
JOIN (SELECT chunk, list(delta ORDER BY i) AS deltas, list(value ORDER BY i) AS vals
      FROM new_samples GROUP BY chunk) s USING (chunk)
LEFT JOIN (SELECT chunk, list(pos ORDER BY i) AS nan_pos, list(bits ORDER BY i) AS nan_bits
           FROM new_nans GROUP BY chunk) x USING (chunk)
ORDER BY c.bucket, c.series_id
"""  # noqa: S608 (fixed text, no values)
