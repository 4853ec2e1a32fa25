"""The registration pages: the form, the code entry (the same for everyone), and the new UHID card.

The same headers as the sign-in pages (smart_auth/pages.py: no scripts, no framing, no caching),
plus images from data: URLs for the card's QR code. Made for phones first: 16 px text, 44 px
controls, one column; each problem is shown in plain words next to its field (form.page_errors)."""
from __future__ import annotations

import datetime

from flask import Response
from jinja2 import DictLoader, Environment, select_autoescape

from ..smart_auth.pages import HEADERS
from .form import CONTACT, GENDER_NAMES

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ self.title() }} - Med-Port</title>
<style>
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:16px;line-height:1.5;color:#1f1f1f;
 background:#fff;max-width:40rem;margin:0 auto;padding:0 1rem 2rem}
header{border-bottom:4px solid #1d4f91;padding:.75rem 0;margin-bottom:1rem;font-weight:700;color:#1d4f91}
h1{font-size:1.75rem;line-height:1.25;margin:.5rem 0 1rem} h2{font-size:1.25rem;margin:1.5rem 0 .5rem}
a{color:#1d4f91}
a:focus,input:focus,select:focus,textarea:focus,button:focus{outline:3px solid #f2b600;outline-offset:1px}
fieldset{margin:0 0 1.25rem;padding:.75rem 1rem .25rem;border:1px solid #b8b8b8;border-radius:6px;min-width:0}
legend{font-weight:700;padding:0 .25rem}
.field{margin:0 0 1rem} .field>label{display:block;font-weight:600;margin-bottom:.25rem}
.hint{display:block;color:#555;margin:0 0 .25rem} p.hint{margin-bottom:.75rem}
.req{color:#b3261e;font-weight:700}
input[type=text],input[type=tel],input[type=email],input[type=password],input[type=date],select,textarea{
 display:block;width:100%;max-width:24rem;min-height:44px;padding:.5rem .6rem;font:inherit;font-size:16px;color:inherit;
 background:#fff;border:1px solid #6b6b6b;border-radius:4px;margin:0}
textarea{max-width:100%;min-height:5rem}
select{appearance:auto}
.invalid input,.invalid select,.invalid textarea{border:2px solid #b3261e}
.field.invalid{border-left:4px solid #b3261e;padding-left:.75rem} fieldset.invalid{border-left:4px solid #b3261e}
.error{color:#b3261e;font-weight:700;margin:0 0 .25rem}
.problem{border:2px solid #b3261e;border-radius:6px;padding:.75rem 1rem;margin:0 0 1.25rem}
.problem p{margin:.25rem 0}
.check{display:flex;gap:.6rem;align-items:flex-start;margin:0 0 1rem}
.check input{width:24px;height:24px;margin:.1rem 0 0;flex:none}
button,.button{display:inline-block;min-height:44px;padding:.55rem 1.25rem;font:inherit;font-size:16px;font-weight:600;
 color:#fff;background:#1d4f91;border:1px solid #1d4f91;border-radius:4px;cursor:pointer;text-decoration:none}
.muted{color:#555}
.uhid{white-space:nowrap;font-size:clamp(1.2rem,6vw,2.25rem);font-weight:700;letter-spacing:.03em;
 font-variant-numeric:tabular-nums;margin:.25rem 0 .5rem}
.nowrap{white-space:nowrap}
.card{border:2px solid #1d4f91;border-radius:8px;padding:1rem;margin:0 0 1.5rem}
.card img{display:block;max-width:100%;height:auto;margin:.5rem 0}
.next li{margin:0 0 .75rem}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media print{header,.next,.no-print{display:none} .card{border:1px solid #000}}
</style></head><body>
<header>Med-Port</header>
<main id="main">
<h1>{{ self.title() }}</h1>
{% block body %}{% endblock %}
</main>
</body></html>"""

# one field: its label (for=), hint, the problem in plain words above the input, the input itself
_MACROS = """{% macro error(id, text) -%}
<p class="error" id="{{ id }}"><span class="visually-hidden">Error: </span>{{ text }}</p>
{%- endmacro %}
{% macro field(name, label, errors, value="", type="text", required=False, hint="", autocomplete="",
                  inputmode="", described="") -%}
<div class="field{% if errors[name] %} invalid{% endif %}">
<label for="{{ name }}">{{ label }}{% if required %} <span class="req" aria-hidden="true">*</span>{% endif %}</label>
{% if hint %}<span class="hint" id="{{ name }}-hint">{{ hint }}</span>{% endif %}
{% if errors[name] %}{{ error(name ~ "-error", errors[name]) }}{% endif %}
{% set ids = ((name ~ "-hint") if hint else "") ~ " " ~ described ~ " " ~ ((name ~ "-error") if errors[name] else "") %}
{% if type == "textarea" %}<textarea id="{{ name }}" name="{{ name }}" rows="3"
{%- if ids.strip() %} aria-describedby="{{ ids.split()|join(' ') }}"{% endif %}
{%- if errors[name] %} aria-invalid="true"{% endif %}>{{ value }}</textarea>
{%- else %}<input type="{{ type }}" id="{{ name }}" name="{{ name }}"
{%- if type != "password" %} value="{{ value }}"{% endif %}
{%- if autocomplete %} autocomplete="{{ autocomplete }}"{% endif %}
{%- if inputmode %} inputmode="{{ inputmode }}"{% endif %}
{%- if required %} required aria-required="true"{% endif %}
{%- if ids.strip() %} aria-describedby="{{ ids.split()|join(' ') }}"{% endif %}
{%- if errors[name] %} aria-invalid="true"{% endif %}>{% endif %}
</div>
{%- endmacro %}"""

_FORM = """{% extends "base" %}{% from "macros" import field, error %}
{% block title %}Register for a Unique Health ID{% endblock %}
{% block body %}{% set errors = errors or {} %}
<p>One number for all your health records, at every hospital. After you register you get your UHID,
your account and your health card.</p>
<p>Fields marked <span class="req">*</span> are required. You also need a <strong>mobile phone number or
an email address</strong> (or both): we send a code there to confirm it is yours.</p>
<p class="muted">Already registered? <a href="/auth/login">Sign in</a>.</p>
{% if errors or messages %}<div class="problem" role="alert" aria-labelledby="problem-title">
<p id="problem-title"><strong>{% if errors %}Some details need changing. Check the fields marked below
{%- if "password" not in errors %}, and enter your password again{% endif %}.
{%- else %}There is a problem.{% endif %}</strong></p>
{% for m in messages %}<p class="error">{{ m }}</p>{% endfor %}
</div>{% endif %}
<form method="post" action="/register" id="reg" novalidate>
<input type="hidden" name="csrf" value="{{ csrf }}">
<fieldset><legend>You</legend>
{{ field("given", "Given name(s)", errors, v.given, required=True, autocomplete="given-name") }}
{{ field("family", "Family name", errors, v.family, required=True, autocomplete="family-name") }}
{{ field("birthDate", "Date of birth", errors, v.birthDate, type="date", required=True, autocomplete="bday",
         hint="For example 2 April 1950") }}
<div class="field{% if errors.gender %} invalid{% endif %}">
<label for="gender">Gender <span class="req" aria-hidden="true">*</span></label>
{% if errors.gender %}{{ error("gender-error", errors.gender) }}{% endif %}
<select id="gender" name="gender" required aria-required="true"{% if errors.gender %} aria-invalid="true"
 aria-describedby="gender-error"{% endif %}>
<option value=""{% if not v.gender %} selected{% endif %}>Choose...</option>
{% for code, display in genders.items() %}
<option value="{{ code }}"{% if v.gender == code %} selected{% endif %}>{{ display }}</option>
{% endfor %}</select>
</div>
</fieldset>
<fieldset{% if errors[contact] %} class="invalid"{% endif %}
 aria-describedby="contact-hint{% if errors[contact] %} contact-error{% endif %}">
<legend>How we reach you <span class="req" aria-hidden="true">*</span></legend>
<p class="hint" id="contact-hint">A mobile phone number, an email address, or both. We send your confirmation code,
your UHID and your username there.</p>
{% if errors[contact] %}{{ error("contact-error", errors[contact]) }}{% endif %}
{{ field("phone", "Mobile phone", errors, v.phone, type="tel", autocomplete="tel", described="contact-hint") }}
{{ field("email", "Email", errors, v.email, type="email", autocomplete="email", described="contact-hint") }}
</fieldset>
<fieldset><legend>Your account</legend>
{{ field("password", "Password", errors, type="password", required=True, autocomplete="new-password",
         hint="At least 8 characters. Your username is made for you and sent with your UHID.") }}
</fieldset>
<fieldset><legend>Did a hospital give you a UHID? (optional)</legend>
<p class="hint">If so, enter it with the claim code the hospital gave you, so your account opens that record.</p>
{{ field("uhid", "UHID", errors, v.uhid, inputmode="numeric", hint="14 digits, like 12-3456-7890-1234") }}
{{ field("claimCode", "Claim code", errors, v.claimCode, autocomplete="off", hint="Like ABCD-EFGH-JKLM") }}
</fieldset>
<fieldset><legend>Emergency contact (optional)</legend>
{{ field("emergencyContactName", "Name", errors, v.emergencyContactName) }}
{{ field("emergencyContactPhone", "Phone", errors, v.emergencyContactPhone, type="tel") }}
{{ field("emergencyContactRelationship", "Relationship to you", errors, v.emergencyContactRelationship,
         hint="For example: son, wife, friend") }}
</fieldset>
<fieldset><legend>Your health (optional)</legend>
<p class="hint">A clinician will confirm what you write here.</p>
{{ field("allergies", "Allergies, one per line", errors, v.allergies, type="textarea") }}
{{ field("conditions", "Conditions, one per line", errors, v.conditions, type="textarea") }}
</fieldset>
<div class="check"><input type="checkbox" id="confirmNewIdentity" name="confirmNewIdentity" value="yes">
<label for="confirmNewIdentity">I am not the person already registered with my name, date of birth and
contact (tick this only if a message from us said that someone is)</label></div>
<button type="submit">Register</button>
</form>{% endblock %}"""

_CARD = """{% extends "base" %}{% block title %}Your Unique Health ID{% endblock %}
{% block body %}
<p>{% if claimed %}Your account now opens the record your hospital made.{% else %}You are registered.
We have also sent your UHID and username to your phone or email.{% endif %}</p>
<div class="card">
<p class="muted" style="margin:0">Unique Health ID (UHID)</p>
<p class="uhid"><strong>{{ uhid }}</strong></p>
{% if name %}<p>{{ name }}{% if birth_date %}, born <span class="nowrap">{{ birth_date|long_date }}</span>{% endif %}
</p>{% endif %}
<p>Username: <strong class="nowrap">{{ username }}</strong></p>
{% if png %}
<img alt="Health card QR code for UHID {{ uhid }}" src="data:image/png;base64,{{ png }}" width="300" height="300">
<p class="muted">Any hospital or pharmacy can check this card offline: it is signed by {{ issuer }}.</p>
{% else %}<p>Your health card could not be made just now; your health apps can fetch it for you.</p>{% endif %}
</div>
<h2>Next steps</h2>
<ul class="next">
{% if file %}<li><a download="health-card.smart-health-card"
href="data:application/smart-health-card;base64,{{ file }}">Save your health card</a> on your phone or computer.
Show it at any hospital or pharmacy.</li>{% endif %}
<li>Print this page, or take a screenshot of it: use Print in your browser's menu (on a phone: Share, then Print).
Keep it with your papers.</li>
<li><a href="/auth/login">Sign in</a> as <strong class="nowrap">{{ username }}</strong> with the password you chose.
Health apps ask you to sign in the same way.</li>
</ul>
{% endblock %}"""

_CONFIRM = """{% extends "base" %}{% block title %}Check your phone or email{% endblock %}
{% block body %}
<p>{{ accepted }}</p>
<form method="post" action="/register/confirm" novalidate>
<input type="hidden" name="csrf" value="{{ csrf }}">
<div class="field{% if messages %} invalid{% endif %}">
<label for="code">Confirmation code <span class="req" aria-hidden="true">*</span></label>
<span class="hint" id="code-hint">10 letters and digits, like ABCD-EFGH-JK</span>
{% for m in messages %}<p class="error" id="code-error-{{ loop.index }}" role="alert">
<span class="visually-hidden">Error: </span>{{ m }}</p>{% endfor %}
<input type="text" id="code" name="code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false"
 required aria-required="true"
 aria-describedby="code-hint{% for m in messages %} code-error-{{ loop.index }}{% endfor %}"
{%- if messages %} aria-invalid="true"{% endif %}>
</div>
<button type="submit">Finish registering</button>
</form>
<p class="muted">No message after a few minutes? <a href="/register">Register again</a>, and check the phone
number or email address you give.</p>{% endblock %}"""


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _long_date(value: str) -> str:
    """1950-04-02 as "2 April 1950" (a day, month and year nobody misreads)."""
    try:
        day = datetime.date.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


_env = Environment(loader=DictLoader({"base": _BASE, "macros": _MACROS, "form": _FORM, "card": _CARD,
                                     "confirm": _CONFIRM}),
                   autoescape=select_autoescape(default=True, default_for_string=True))
_env.filters["long_date"] = _long_date
_env.globals.update(contact=CONTACT)
_HEADERS = HEADERS | {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                                "form-action 'self'; frame-ancestors 'none'"}


def render(template: str, status: int = 200, cookies: dict | None = None, **values) -> Response:
    if template == "form":
        values["genders"] = GENDER_NAMES         # code -> the words shown ("female" -> "Female")
    response = Response(_env.get_template(template).render(**values), status=status, headers=_HEADERS,
                        content_type="text/html; charset=utf-8")
    for key, value in (cookies or {}).items():
        response.set_cookie(key, value, httponly=True, samesite="Strict", path="/register", max_age=3600)
    return response
