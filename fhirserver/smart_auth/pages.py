"""The HTML pages of the authorization server: error, login, consent (with patient picker).

Rendered by Jinja with autoescaping on; sent with no-store caching, no framing (the consent
button must not be clickjacked, App Launch 2.2 "Security considerations") and a restrictive
Content-Security-Policy (no scripts at all).
"""
from __future__ import annotations

from flask import Response
from jinja2 import DictLoader, Environment, select_autoescape

from .scopes import ScopeError, parse_scope

BASE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}Sign in{% endblock %} · Med-Port</title>
<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}
header{display:flex;justify-content:space-between;align-items:baseline;border-bottom:1px solid #ccc;margin-bottom:1rem}
.brand{font-weight:bold;font-size:1.2em} .error{color:#9e2d2d;font-weight:bold} .muted{color:#666;font-size:.9em}
fieldset{margin:1rem 0;border:1px solid #ccc;border-radius:6px} label{display:block;margin:.3rem 0}
button{margin-right:.5rem;padding:.4rem 1rem} input[type=text],input[type=password]{padding:.3rem;width:16rem}
</style></head><body>
<header><span class="brand">Med-Port</span>
{% if signed_in_as %}<nav><span class="muted">Signed in as {{ signed_in_as }}</span> ·
<a href="/auth/logout{% if request_id %}?request={{ request_id }}{% endif %}">Sign out</a></nav>{% endif %}
</header>
<main>
<h1>{{ self.title() }}</h1>
{% block body %}{% endblock %}
</main>
</body></html>"""

_ERROR = """{% extends "base" %}{% block title %}Authorization error{% endblock %}
{% block body %}<p class="error">{{ message }}</p>
<p class="muted">The application that sent you here is misconfigured or the link has expired.
You may close this page.</p>{% endblock %}"""

_MESSAGE = """{% extends "base" %}{% block title %}{{ title }}{% endblock %}
{% block body %}<p>{{ message }}</p>{% endblock %}"""

_LOGIN = """{% extends "base" %}{% block title %}Sign in{% endblock %}
{% block body %}
{% if app_name %}<p><strong>{{ app_name }}</strong> asks for access to your health records.</p>{% endif %}
{% if message %}<p class="error" role="alert">{{ message }}</p>{% endif %}
<form method="post" action="{{ action }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="request" value="{{ request_id }}">
<label>Username <input type="text" name="username" value="{{ username }}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>{% endblock %}"""

_CONSENT = """{% extends "base" %}{% block title %}Allow access?{% endblock %}
{% block body %}
<p><strong>{{ app_name }}</strong> asks for the access below to Med-Port. You are signed in as
<strong>{{ username }}</strong>.</p>
{% if message %}<p class="error" role="alert">{{ message }}</p>{% endif %}
<form method="post" action="{{ action }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="request" value="{{ request_id }}">
{% if picker %}<fieldset><legend>{% if proxy_picker %}Whose record?{% else %}Patient{% endif %}</legend>
{% if chosen_patient %}<p>Chosen: <strong>{{ chosen_patient.name }}</strong>
{% if chosen_patient.uhid %}<span class="muted">UHID {{ chosen_patient.uhid }}</span>{% endif %}</p>{% endif %}
{% if proxy_picker %}<p class="muted">The people who have given you access to their record:</p>
{% else %}<label>Find a patient by name or UHID <input type="text" name="patient_search" value="{{ search }}"
 aria-describedby="picker-message"></label>
<button type="submit" name="decision" value="search" formnovalidate>Search</button>{% endif %}
{% if picker_message %}<p class="error" id="picker-message" role="alert">{{ picker_message }}</p>{% endif %}
{% for p in patients %}<label><input type="radio" name="patient" value="{{ p.id }}"
{%- if p.id == chosen %} checked{% endif %}>
{{ p.name }}{% if p.birth_date %} (born {{ p.birth_date }}){% endif %}
<span class="muted">{% if p.uhid %}UHID {{ p.uhid }}{% else %}Patient/{{ p.id }}{% endif %}</span></label>
{% endfor %}
</fieldset>{% elif patient_label %}<p>Patient: <strong>{{ patient_label }}</strong></p>{% endif %}
<fieldset><legend>Permissions (untick any you do not want to give)</legend>
{% for s in scopes %}<label><input type="checkbox" name="scope" value="{{ s.raw }}"{% if s.ticked %} checked{% endif %}>
{{ s.text }} <span class="muted">{{ s.raw }}</span></label>
{% endfor %}</fieldset>
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>{% endblock %}"""

_LOGOUT = """{% extends "base" %}{% block title %}Sign out{% endblock %}
{% block body %}<form method="post" action="{{ action }}"><input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="request" value="{{ request_id }}">
<button type="submit">Sign out</button></form>{% endblock %}"""

_env = Environment(loader=DictLoader({"base": BASE_TEMPLATE, "error": _ERROR, "message": _MESSAGE, "login": _LOGIN,
                                      "consent": _CONSENT, "logout": _LOGOUT}),
                   autoescape=select_autoescape(default=True, default_for_string=True))

HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


def render(name: str, status: int = 200, **values) -> Response:
    html = _env.get_template(name).render(**values)
    return Response(html, status=status, headers=HEADERS, content_type="text/html; charset=utf-8")


def error_page(message: str, status: int = 400) -> Response:
    return render("error", status, message=message)


_OTHER = {
    "openid": "Know who you are (sign you in to the app)",
    "fhirUser": "See your user record (who you are in the health record)",
    "profile": "See your user record (who you are in the health record)",
    "launch": "Use the patient and visit already open in your record system",
    "launch/patient": "Work with one patient's record (chosen now)",
    "launch/encounter": "Work with one visit (chosen now)",
    "offline_access": "Keep access when you are not using the app (until you revoke it)",
    "online_access": "Keep access while you are signed in",
}
_PERMISSIONS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_CONTEXTS = {"patient": "the patient's", "user": "all records you may see:", "system": "all"}


def describe_scope(raw: str) -> str:
    """A plain-language line for the consent page."""
    if raw in _OTHER:
        return _OTHER[raw]
    try:
        scope = parse_scope(raw)
    except ScopeError:
        scope = None
    if scope is None:
        return raw
    what = "all kinds of data" if scope.resource_type == "*" else f"{scope.resource_type} data"
    verbs = ", ".join(_PERMISSIONS[p] for p in scope.permissions)
    limited = " (only some of it)" if scope.query else ""
    return f"{verbs.capitalize()} {_CONTEXTS[scope.context]} {what}{limited}"
