"""What a person gives to register, checked field by field (each problem names its field)."""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from ..errors import BadRequest, Issue
from ..smart_auth.accounts import MIN_PASSWORD
from ..uhid import number

GENDERS = ("female", "male", "other", "unknown")
MAX_TEXT = 100
MAX_ITEMS = 20
_PHONE = re.compile(r"\+?[0-9 ()\-.]{6,24}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
        problems.append(Issue(f"birthDate {value!r} is not a possible birth date", "invalid",
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
