"""The `$data-quality` figures as an HTML page (Accept: text/html or _format=html): the same groups as
the Parameters answer (report.py). Every value is escaped (Jinja autoescape: custodians, types, rule
keys and code systems come from stored records, i.e. from clients), and the page loads nothing: its
Content-Security-Policy allows no script, no frame, no outside resource."""
from __future__ import annotations

from jinja2 import DictLoader, Environment, select_autoescape

from .report import Group

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Data quality</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #999;padding:.2em .5em;text-align:left}td.n{text-align:right}</style></head>
<body><h1>Data quality</h1><p>Generated {{ generated }}: {{ groups|length }} group(s) by custodian and type.</p>
{% for g in groups %}<h2>{{ g.custodian or "No custodian" }} &middot; {{ g.type }}</h2>
<table><tr><th>Records</th><th>Conforming</th><th>Not conforming</th><th>Unchecked</th>
<th>Lacking a UHID-bearing subject</th></tr>
<tr><td class="n">{{ g.total }}</td><td class="n">{{ g.conformance.get("conforms", 0) }}</td>
<td class="n">{{ g.conformance.get("not-conforming", 0) }}</td>
<td class="n">{{ g.conformance.get("unchecked", 0) }}</td>
<td class="n">{{ g.no_uhid_subject }}</td></tr></table>
{% set rules = g.top_rules() %}{% if rules %}<table><tr><th>Failing rule</th><th>Key</th><th>Records</th></tr>
{% for rule, key, n in rules %}<tr><td>{{ rule }}</td><td>{{ key }}</td><td class="n">{{ n }}</td></tr>
{% endfor %}</table>{% endif %}
{% set systems = g.top_systems() %}{% if systems %}<table><tr><th>Code system</th><th>Records</th></tr>
{% for system, n in systems %}<tr><td>{{ system }}</td><td class="n">{{ n }}</td></tr>{% endfor %}</table>{% endif %}
{% else %}<p>No records.</p>{% endfor %}
</body></html>
"""

_env = Environment(loader=DictLoader({"page": _PAGE}), autoescape=select_autoescape(default=True,
                                                                                     default_for_string=True))


def render(groups: list[Group], generated: str) -> str:
    return _env.get_template("page").render(groups=groups, generated=generated)
