"""Bundles: a search's `searchset` (its entries, the `_include`d ones, the self and next
links, the total when asked) and a resource's `history`."""

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from app.core.pagination import encode_cursor
from app.fhir.responses import base_url, origin
from app.fhir.search import Query

Resource = dict[str, Any]


def _url(request: Request, pairs: Iterable[tuple[str, str]]) -> str:
    """This request's absolute URL (a POST _search's as the GET it equals)."""
    path = request.scope["path"].removesuffix("/").removesuffix("/_search")
    query = urlencode(list(pairs))
    return f"{origin(request)}{path}?{query}" if query else f"{origin(request)}{path}"


def links(
    request: Request, pairs: Sequence[tuple[str, str]], next_after: int | None
) -> list[dict[str, str]]:
    """`self`, and `next` when more follow: the same search with the cursor after
    `next_after` (the keyset cursor of the REST lists)."""
    found = [{"relation": "self", "url": _url(request, pairs)}]
    if next_after is not None:
        kept = [(name, value) for name, value in pairs if name != "_cursor"]
        kept.append(("_cursor", encode_cursor(next_after)))
        found.append({"relation": "next", "url": _url(request, kept)})
    return found


def searchset(
    request: Request,
    query: Query,
    matches: Sequence[Resource],
    *,
    more: bool,
    included: Sequence[Resource] = (),
    total: int | None = None,
) -> Resource:
    base = query.base
    after = int(matches[-1]["id"]) if more else None
    bundle: Resource = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links(request, query.pairs, after)
    entries = [_entry(base, resource, "match") for resource in matches]
    entries.extend(_entry(base, resource, "include") for resource in included)
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(base: str, resource: Resource, mode: str) -> Resource:
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def history(
    request: Request,
    pairs: Sequence[tuple[str, str]],
    versions: Sequence[Resource],
    *,
    next_before: int | None,
) -> Resource:
    """A resource's versions, newest first, each as the write that made it: version 1 a
    create, each later one an update."""
    base = base_url(request)
    entries = []
    for resource in versions:
        kind, resource_id = resource["resourceType"], resource["id"]
        version = resource["meta"]["versionId"]
        created = version == "1"
        entries.append(
            {
                "fullUrl": f"{base}/{kind}/{resource_id}",
                "resource": resource,
                "request": {
                    "method": "POST" if created else "PUT",
                    "url": kind if created else f"{kind}/{resource_id}",
                },
                "response": {
                    "status": "201 Created" if created else "200 OK",
                    "etag": f'W/"{version}"',
                    "lastModified": resource["meta"]["lastUpdated"],
                },
            }
        )
    bundle: Resource = {
        "resourceType": "Bundle",
        "type": "history",
        "link": links(request, pairs, next_before),
    }
    if entries:
        bundle["entry"] = entries
    return bundle
