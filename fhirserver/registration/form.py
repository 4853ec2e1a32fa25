"""What a person gives to register, checked field by field (each problem names its field)."""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from ..errors import BadRequest, Issue
from ..smart_auth.accounts import MIN_PASSWORD
from ..uhid import number

GENDERS = ("female", "male", "other", "unknown")
GENDER_NAMES = {"female": "Female", "male": "Male", "other": "Other", "unknown": "Unknown"}   # shown on the page
MAX_TEXT = 100
MAX_ITEMS = 20
_PHONE = re.compile(r"\+?[0-9 ()\-.]{6,24}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IMPOSSIBLE = "is not a possible birth date"


@dataclass
class Registration:
    given: str
    family: str
    birth_date: str
    gender: str
    phone: str | None
    email: str | None
    username: str                           # unused: the server assigns usernames (never told if taken)
    password: str
    emergency_name: str | None = None
    emergency_phone: str | None = None
    emergency_relationship: str | None = None
    allergies: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    uhid: str | None = None                 # claim the record a hospital made (from the card it gave)
    claim_code: str | None = None           # ... with the claim code it gave (claim_codes.py)
    confirm_new_identity: bool = False      # "I am not the person you found": register anyway


def parse(data: dict) -> Registration:
    """From a JSON object or a submitted form; BadRequest lists every problem."""
    if not isinstance(data, dict):
        raise BadRequest("A registration is a JSON object")
    problems: list[Issue] = []

    def text(name: str, required: bool = False, limit: int = MAX_TEXT) -> str | None:
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                problems.append(Issue(f"{name} is required", "required", expression=(name,)))
            return None
        if not isinstance(value, str) or len(value) > limit or _CONTROL.search(value):
            problems.append(Issue(f"{name} must be text of at most {limit} characters, without control characters",
                                  "invalid", expression=(name,)))
            return None
        return value.strip()

    given, family = text("given", True), text("family", True)
    birth_date = _date(text("birthDate", True), problems)
    gender = text("gender", True)
    if gender is not None and gender not in GENDERS:
        problems.append(Issue(f"gender must be one of {', '.join(GENDERS)}", "code-invalid", expression=("gender",)))
    phone, email = text("phone"), text("email", limit=254)
    if phone is None and email is None:
        problems.append(Issue("give a phone number or an email address (or both)", "required",
                              expression=("phone", "email")))
    if phone is not None and not (_PHONE.fullmatch(phone) and len(re.sub(r"\D", "", phone)) >= 6):
        problems.append(Issue(f"phone {phone!r} is not a phone number", "invalid", expression=("phone",)))
    if email is not None and not _EMAIL.fullmatch(email):
        problems.append(Issue(f"email {email!r} is not an email address", "invalid", expression=("email",)))
    username = None        # assigned by the server (service._new_account): a chosen one is ignored
    password = data.get("password")
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= 200:
        problems.append(Issue(f"password must be {MIN_PASSWORD} to 200 characters", "invalid",
                              expression=("password",)))
    emergency_phone = text("emergencyContactPhone")
    if emergency_phone is not None and not (_PHONE.fullmatch(emergency_phone)
                                            and len(re.sub(r"\D", "", emergency_phone)) >= 6):
        problems.append(Issue(f"emergencyContactPhone {emergency_phone!r} is not a phone number", "invalid",
                              expression=("emergencyContactPhone",)))
    uhid, claim_code = text("uhid"), text("claimCode", limit=20)
    if uhid is not None:
        try:
            uhid = number.canonical(uhid)
        except number.InvalidUhid as e:
            problems.append(Issue(str(e), "invalid", expression=("uhid",)))
        if claim_code is None:
            problems.append(Issue("claimCode is required with uhid: the code your hospital gave you with your UHID",
                                  "required", expression=("claimCode",)))
    reg = Registration(
        given or "", family or "", birth_date or "", gender or "", phone, email, username or "",
        password if isinstance(password, str) else "", text("emergencyContactName"), emergency_phone,
        text("emergencyContactRelationship"), _items(data, "allergies", problems),
        _items(data, "conditions", problems), uhid, claim_code,
        data.get("confirmNewIdentity") in (True, "true", "on", "yes"))
    if problems:
        raise BadRequest(issues=problems)
    return reg


def _date(value: str | None, problems: list[Issue]) -> str | None:
    if value is None:
        return None
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError:
        problems.append(Issue(f"birthDate {value!r} must be a date like 1950-04-02", "invalid",
                              expression=("birthDate",)))
        return None
    if not datetime.date(1890, 1, 1) <= day <= datetime.date.today() or len(value) != 10:
        problems.append(Issue(f"birthDate {value!r} {_IMPOSSIBLE}", "invalid",
                              expression=("birthDate",)))
        return None
    return value


def _items(data: dict, name: str, problems: list[Issue]) -> list[str]:
    """A list of short texts, or one text with an item per line or comma (the web form)."""
    raw = data.get(name) or []
    if isinstance(raw, str):
        raw = [part for line in raw.splitlines() for part in line.split(",")]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        problems.append(Issue(f"{name} must be a list of texts", "invalid", expression=(name,)))
        return []
    items = [x.strip() for x in raw if x.strip()]
    if len(items) > MAX_ITEMS or any(len(x) > MAX_TEXT or _CONTROL.search(x) for x in items):
        problems.append(Issue(f"{name}: at most {MAX_ITEMS} items of at most {MAX_TEXT} characters "
                              "(no control characters)", "invalid",
                              expression=(name,)))
        return []
    return items


# ---- the web page's words: each problem in plain words, next to its field ----------------------

CONTACT = "contact"          # the phone-or-email rule: shown by the phone and email fields together
_PLAIN = {
    ("given", "required"): "Enter your given name",
    ("family", "required"): "Enter your family name",
    ("birthDate", "required"): "Enter your date of birth",
    ("birthDate", "invalid"): "Enter your date of birth as day, month and year",
    ("gender", "required"): "Choose your gender",
    ("gender", "code-invalid"): "Choose your gender from the list",
    (CONTACT, "required"): "Enter a mobile phone number or an email address (or both), so we can send you a code",
    ("phone", "invalid"): "Enter a phone number, like +91 98100 00000",
    ("email", "invalid"): "Enter an email address, like name@example.com",
    ("password", "invalid"): f"Choose a password of {MIN_PASSWORD} to 200 characters",
    ("emergencyContactPhone", "invalid"): "Enter your emergency contact's phone number, like +91 98100 11111",
    ("uhid", "invalid"): "Enter the UHID as it is on your card: 14 digits, like 12-3456-7890-1234",
    ("claimCode", "required"): "Enter the claim code your hospital gave you with your UHID",
    ("claimCode", "invalid"): "Enter the claim code as your hospital wrote it, like ABCD-EFGH-JKLM",
    ("allergies", "invalid"): f"List at most {MAX_ITEMS} allergies, one per line, each under {MAX_TEXT} characters",
    ("conditions", "invalid"): f"List at most {MAX_ITEMS} conditions, one per line, each under {MAX_TEXT} characters",
}


def page_errors(issues) -> tuple[dict[str, str], list[str]]:
    """The problems of a refused registration for the web page: {field: message in plain words}
    (the first problem of each field) and the messages that belong to no field."""
    fields: dict[str, str] = {}
    general: list[str] = []
    for issue in issues:
        where = issue.expression
        name = CONTACT if tuple(where) == ("phone", "email") else (where[0] if where else None)
        if name is None:
            general.append(issue.diagnostics)
            continue
        if name == "birthDate" and _IMPOSSIBLE in issue.diagnostics:
            message = "Enter your real date of birth: it cannot be in the future or before 1890"
        elif issue.code == "invalid" and (name, "invalid") not in _PLAIN and "characters" in issue.diagnostics:
            message = f"Use at most {MAX_TEXT} characters here, on one line"
        else:
            message = _PLAIN.get((name, issue.code), issue.diagnostics)
        fields.setdefault(name, message)
    return fields, general
