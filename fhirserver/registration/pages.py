"""The registration pages: the form, the code entry (the same for everyone), and the new UHID card.

Same look and the same headers as the sign-in pages (smart_auth/pages.py: no scripts, no framing,
no caching), plus images from data: URLs for the card's QR code."""
from __future__ import annotations

from flask import Response
from jinja2 import DictLoader, Environment, select_autoescape

from ..smart_auth.pages import BASE_TEMPLATE, HEADERS

_FORM = """{% extends "base" %}{% block title %}Register for a Unique Health ID{% endblock %}
{% block body %}
<p>One number for all your health records, at every hospital. You get your UHID and your health card at once.</p>
{% for m in messages %}<p class="error" role="alert">{{ m }}</p>{% endfor %}
<form method="post" action="/register" id="reg">
<input type="hidden" name="csrf" value="{{ csrf }}">
<fieldset><legend>You</legend>
<label>Given name(s) <input type="text" name="given" value="{{ v.given }}" required></label>
<label>Family name <input type="text" name="family" value="{{ v.family }}" required></label>
<label>Birth date <input type="date" name="birthDate" value="{{ v.birthDate }}" required></label>
<label>Gender <select name="gender">{% for g in genders %}
<option value="{{ g }}"{% if v.gender == g %} selected{% endif %}>{{ g }}</option>{% endfor %}</select></label>
<label>Mobile phone <input type="text" name="phone" value="{{ v.phone }}" autocomplete="tel"></label>
<label>Email <input type="text" name="email" value="{{ v.email }}" autocomplete="email"></label>
<label>UHID, if a hospital gave you one <input type="text" name="uhid" value="{{ v.uhid }}"></label>
<label>and the claim code it gave you with it <input type="text" name="claimCode" value="{{ v.claimCode }}"></label>
</fieldset>
<fieldset><legend>Emergency contact (optional)</legend>
<label>Name <input type="text" name="emergencyContactName" value="{{ v.emergencyContactName }}"></label>
<label>Phone <input type="text" name="emergencyContactPhone" value="{{ v.emergencyContactPhone }}"></label>
<label>Relationship
<input type="text" name="emergencyContactRelationship" value="{{ v.emergencyContactRelationship }}"></label>
</fieldset>
<fieldset><legend>Your health (optional; a clinician will confirm it)</legend>
<label>Allergies, one per line <textarea name="allergies" rows="2">{{ v.allergies }}</textarea></label>
<label>Conditions, one per line <textarea name="conditions" rows="2">{{ v.conditions }}</textarea></label>
</fieldset>
<fieldset><legend>Your account</legend>
<p class="muted">We send your username with your UHID to your phone or email.</p>
<label>Password (at least 8 characters)
<input type="password" name="password" autocomplete="new-password" required></label>
<label><input type="checkbox" name="confirmNewIdentity" value="yes">
We told you someone with my name, birth date and contact is registered, and I am a different person</label>
</fieldset>
<button type="submit">Register</button>
</form>{% endblock %}"""

_CARD = """{% extends "base" %}{% block title %}Your Unique Health ID{% endblock %}
{% block body %}
<p>{% if claimed %}Your account now opens the record your hospital made.{% else %}You are registered.{% endif %}
Sign in to health apps as <strong>{{ username }}</strong>.</p>
<p style="font-size:2rem;letter-spacing:.1em"><strong>{{ uhid }}</strong></p>
<p>{{ name }}, born {{ birth_date }}</p>
{% if png %}
<img alt="Health card QR code for {{ uhid }}" src="data:image/png;base64,{{ png }}" width="300" height="300">
<p class="muted">Any hospital or pharmacy can check this card offline: it is signed by {{ issuer }}.</p>
<p><a download="health-card.smart-health-card"
href="data:application/smart-health-card;base64,{{ file }}">Save your health card</a></p>
{% else %}<p>Your health card could not be made just now; your health apps can fetch it for you.</p>{% endif %}
{% endblock %}"""

_CONFIRM = """{% extends "base" %}{% block title %}Check your phone or email{% endblock %}
{% block body %}
<p>{{ accepted }}</p>
{% for m in messages %}<p class="error" role="alert">{{ m }}</p>{% endfor %}
<form method="post" action="/register/confirm">
<input type="hidden" name="csrf" value="{{ csrf }}">
<label>Code <input type="text" name="code" autocomplete="one-time-code" required></label>
<button type="submit">Finish registering</button>
</form>{% endblock %}"""

_env = Environment(loader=DictLoader({"base": BASE_TEMPLATE, "form": _FORM, "card": _CARD, "confirm": _CONFIRM}),
                   autoescape=select_autoescape(default=True, default_for_string=True))
_HEADERS = HEADERS | {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                                "form-action 'self'; frame-ancestors 'none'"}


def render(template: str, status: int = 200, cookies: dict | None = None, **values) -> Response:
    response = Response(_env.get_template(template).render(**values), status=status, headers=_HEADERS,
                        content_type="text/html; charset=utf-8")
    for key, value in (cookies or {}).items():
        response.set_cookie(key, value, httponly=True, samesite="Strict", path="/register", max_age=3600)
    return response
