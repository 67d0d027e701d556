"""A response body read under a size limit, gzip decoded on the way. Pure, no I/O.

The limit applies to the decoded body (Prometheus's ``body_size_limit``) and is enforced while
the body streams in: decompression output is capped chunk by chunk, so a small gzip bomb
cannot expand into memory before the limit is noticed.
"""

from __future__ import annotations

import zlib

from opsbook.metrics.scrape.errors import ScrapeError

_GZIP_WBITS = zlib.MAX_WBITS | 16


def body_too_large(limit: int) -> ScrapeError:
    return ScrapeError(
        f"body exceeds {limit} bytes (metrics.limits.body_size_bytes); expose fewer series "
        "or raise the limit"
    )


class BoundedBody:
    """Collects raw body chunks; raises :class:`ScrapeError` once the decoded body is over
    ``limit`` bytes or the encoding is not one we asked for."""

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        encoding = (content_encoding or "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip"):
            raise ScrapeError(
                f"the target answered with Content-Encoding {encoding!r}; opsbook accepts "
                "only gzip or no encoding"
            )
        gzipped = encoding in ("gzip", "x-gzip")
        self._decoder = zlib.decompressobj(_GZIP_WBITS) if gzipped else None
        self._limit = limit
        self._size = 0
        self._chunks: list[bytes] = []
        self._fed_compressed = False

    def feed(self, raw: bytes) -> None:
        if self._decoder is None:
            self._keep(raw)
            return
        self._fed_compressed = self._fed_compressed or bool(raw)
        try:
            self._inflate(raw)
        except zlib.error as exc:
            raise ScrapeError(f"the gzip-encoded body is corrupt: {exc}") from None

    def finish(self) -> bytes:
        """The whole decoded body; raises if a gzip stream was cut short."""
        if self._decoder is not None and self._fed_compressed and not self._decoder.eof:
            raise ScrapeError("the gzip-encoded body ended before the end of its stream")
        return b"".join(self._chunks)

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise body_too_large(self._limit)
        self._chunks.append(data)

    def _inflate(self, data: bytes) -> None:
        decoder = self._decoder
        assert decoder is not None
        while data:
            if decoder.eof:
                # Another gzip member follows (concatenated members are valid gzip).
                decoder = self._decoder = zlib.decompressobj(_GZIP_WBITS)
            # One byte more than allowed is enough to tell that the body is too large.
            self._keep(decoder.decompress(data, self._limit - self._size + 1))
            data = decoder.unused_data if decoder.eof else decoder.unconsumed_tail
