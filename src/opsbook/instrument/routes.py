"""Route templates for metric labels: `/users/{id}`, never `/users/42`.

Starlette and FastAPI routers record the matched route in `scope["route"]`, so after the app has
handled a request the template is a dict lookup away. Mounted sub-applications move the matched
prefix into `root_path`; that prefix is turned back into its template through the mount tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from typing import Any

from opsbook.instrument.metrics import UNMATCHED_ROUTE

_MEMO_LIMIT = 1024


class RouteTemplates:
    """Resolves the route template of a handled request for one application."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._mounts: list[tuple[re.Pattern[str], str]] | None = None
        self._mount_count = -1
        self._prefix_memo: dict[str, str] = {}

    def template(self, scope: MutableMapping[str, Any], original_root_path: str) -> str:
        route = scope.get("route")
        prefix = scope.get("root_path", "")[len(original_root_path) :]
        if not prefix:
            path_format = getattr(route, "path_format", None)
            return path_format if isinstance(path_format, str) else UNMATCHED_ROUTE
        resolved = self._prefix_template(prefix)
        if resolved is None:
            return UNMATCHED_ROUTE
        if route is None or _is_mount(route):
            # The innermost match is a mount (static files, a sub-app that is not a router, or a
            # router none of whose routes matched): its own prefix is already in root_path.
            # FastAPI's router does not record mounts in scope["route"]; Starlette's does.
            return resolved + "/{path}"
        path_format = getattr(route, "path_format", None)
        return resolved + path_format if isinstance(path_format, str) else UNMATCHED_ROUTE

    def _prefix_template(self, prefix: str) -> str | None:
        memo = self._prefix_memo.get(prefix)
        if memo is not None:
            return memo
        for pattern, template in self._mount_patterns():
            if pattern.fullmatch(prefix):
                if "{" not in template and len(self._prefix_memo) < _MEMO_LIMIT:
                    self._prefix_memo[prefix] = template
                return template
        return None

    def _mount_patterns(self) -> list[tuple[re.Pattern[str], str]]:
        routes = list(getattr(self._app, "routes", ()) or ())
        if self._mounts is None or len(routes) != self._mount_count:
            self._mounts = list(_walk_mounts(routes, "", ""))
            self._mount_count = len(routes)
            self._prefix_memo.clear()
        return self._mounts


def _walk_mounts(
    routes: Iterable[Any], regex_prefix: str, template_prefix: str
) -> Iterable[tuple[re.Pattern[str], str]]:
    for route in routes:
        path = getattr(route, "path", None)
        if not _is_mount(route) or not isinstance(path, str):
            continue
        sub_routes = route.routes
        template = template_prefix + _mount_template(path)
        regex = regex_prefix + _param_regex(path)
        yield re.compile(regex), template
        if sub_routes:
            yield from _walk_mounts(sub_routes, regex, template)


def _is_mount(route: Any) -> bool:
    # Starlette's Mount (and look-alikes): children under `routes`, no endpoint of its own.
    return hasattr(route, "routes") and not hasattr(route, "endpoint")


_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z_][a-zA-Z0-9_]*)?}")


def _mount_template(path: str) -> str:
    return _PARAM.sub(r"{\1}", path.rstrip("/"))


def _param_regex(path: str) -> str:
    parts: list[str] = []
    last = 0
    path = path.rstrip("/")
    for match in _PARAM.finditer(path):
        parts.append(re.escape(path[last : match.start()]))
        parts.append("[^/]+")
        last = match.end()
    parts.append(re.escape(path[last:]))
    return "".join(parts)
