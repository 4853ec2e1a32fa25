"""[base]/$data-quality: per custodian organisation and resource type, how many current records
conform to the profiles they were checked against, which rules fail most, which code systems they use
and how many lack a UHID-bearing subject (profiles/operations/data-quality.json; docs/data-quality.md).

Who may ask: a regulator and an administrator (others 403; authorization off: everyone, as for the
CLI). The answer is counters (quality/), never a record: it is read from the store's quality counters,
kept by the write path, so it costs the same at 1M resources as at 10. Accept: text/html or
_format=html answers with the same figures as a page (quality/page.py).
"""
from __future__ import annotations

from ..errors import Forbidden
from ..interactions.instants import now_instant
from ..quality import page, report
from . import Raw
from .parameters import first


def data_quality(ctx, rtype, id, params: dict) -> dict:
    return report.parameters(_groups(ctx, params), now_instant())


def data_quality_page(ctx, rtype, id, params: dict) -> Raw:
    html = page.render(_groups(ctx, params), now_instant())
    return Raw(html.encode(), "text/html; charset=utf-8")


def _groups(ctx, params: dict) -> list[report.Group]:
    _may_ask(ctx.access)
    custodian = report.custodian_filter(first(params, "custodian"))
    return report.groups(ctx.store.quality_counts(custodian, first(params, "type")))


def _may_ask(access) -> None:
    if access.grants is None or access.regulator or access.claims.get("role") == "admin":
        return
    raise Forbidden("$data-quality is for regulators and administrators (docs/data-quality.md)")
