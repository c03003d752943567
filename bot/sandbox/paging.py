"""GitHub-style pagination for the fakes: `per_page`/`page` and a `Link` header."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL


def page_args(request: web.Request, default: int = 30) -> tuple[int, int] | None:
    """(per_page, page) of a request, per_page at most 100; None when they are not numbers."""
    try:
        per_page = min(max(int(request.query.get("per_page", default)), 1), 100)
        page = max(int(request.query.get("page", 1)), 1)
    except ValueError:
        return None
    return per_page, page


def paginate(
    request: web.Request, items: list[Any], per_page: int, page: int, link_base: str | None = None
) -> tuple[list[Any], dict[str, str]]:
    """Slice one page and build GitHub's `Link` header (first/prev/next/last).

    `link_base` (scheme://host:port) puts the links on another server, as a hostile or
    misconfigured proxy would.
    """
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = items[(page - 1) * per_page : page * per_page]
    links: list[tuple[str, int]] = []
    if page > 1:
        links += [("prev", min(page - 1, last)), ("first", 1)]
    if page < last:
        links += [("next", page + 1), ("last", last)]
    if not links:
        return chunk, {}
    url = request.url if link_base is None else URL(link_base).join(request.rel_url)
    parts = [
        f'<{url.update_query(per_page=str(per_page), page=str(n))}>; rel="{rel}"'
        for rel, n in links
    ]
    return chunk, {"Link": ", ".join(parts)}
