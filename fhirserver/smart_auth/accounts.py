"""User accounts of the authorization server: who may log in, as which FHIR user, with what role.

Users are store records of kind "user" keyed by username; passwords are scrypt hashes
(passwords.py). The fhirUser of a patient or practitioner is the resource the SMART
`fhirUser` claim names (SMART App Launch 2.2, "Scopes for requesting identity data").

Online guessing is throttled per username: failures are counted in records of kind
"login-failures" (a sliding window, shared by every worker), and unknown usernames cost the
same scrypt work as known ones, so neither timing nor throttling tells which names exist.
"""
from __future__ import annotations

import math
import re
import secrets
import time
from dataclasses import asdict, dataclass

from . import passwords, standing

KIND = "user"
FAILURES_KIND = "login-failures"
PATIENT_ACCOUNT_KIND = "patient-account"     # Patient id -> username: one account per patient record
ROLES = ("patient", "practitioner", "admin")
MIN_PASSWORD = 8

_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}")   # FHIR R4 id syntax
_ROLE_TYPE = {"patient": "Patient", "practitioner": "Practitioner"}
# fhirUser names a Patient, Practitioner, PractitionerRole, RelatedPerson or Person (App Launch 2.2)
_FHIR_USER_TYPES = ("Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person")


@dataclass
class User:
    username: str
    role: str                      # one of ROLES
    fhir_user: str | None          # "Patient/123", "Practitioner/9"; None allowed for admin only
    organization: str | None       # "Organization/5" (practitioners, optional)
    disabled: bool = False
    password_hash: str = ""

    def public(self) -> dict:
        """JSON view, without the password hash."""
        view = asdict(self)
        del view["password_hash"]
        return view


class LoginThrottled(Exception):
    """Too many failed logins for a username recently; retry_after is in seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


class Users:
    def __init__(self, store, max_failures: int = 5, window_s: int = 900):
        self.store = store
        self.max_failures = max_failures
        self.window_s = window_s

    def add(self, username: str, password: str, role: str, fhir_user: str | None = None,
            organization: str | None = None) -> User:
        """Create a user; ValueError says what is wrong (including a taken username)."""
        if not isinstance(username, str) or not _USERNAME.fullmatch(username):
            raise ValueError(f"username {username!r} must be 1-64 of A-Z a-z 0-9 . _ @ -")
        if role not in ROLES:
            raise ValueError(f"role {role!r} must be one of {', '.join(ROLES)}")
        _check_fhir_user(role, fhir_user)
        if organization is not None and reference_type(organization) != "Organization":
            raise ValueError(f"organization {organization!r} must be a reference like Organization/1")
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
        user = User(username, role, fhir_user, organization, password_hash=passwords.hash_password(password))
        patient = fhir_user.split("/", 1)[1] if role == "patient" else None
        if patient is not None and not self._link(patient, username):
            raise ValueError(f"{fhir_user} already has an account")
        if not self.store.add_record(KIND, username, asdict(user)):
            if patient is not None:
                self.store.delete_record(PATIENT_ACCOUNT_KIND, patient)
            raise ValueError(f"username {username!r} is already taken")
        return user

    def _link(self, patient: str, username: str) -> bool:
        """Make username the patient's one account; an account that was disabled (or is gone) gives
        way, so that a patient whose account was locked can be given a new one."""
        if self.store.add_record(PATIENT_ACCOUNT_KIND, patient, {"username": username}):
            return True
        holder = self.store.get_record(PATIENT_ACCOUNT_KIND, patient)
        user = self.get(holder["username"]) if holder else None
        if user is not None and not user.disabled:
            return False
        self.store.delete_record(PATIENT_ACCOUNT_KIND, patient)
        return self.store.add_record(PATIENT_ACCOUNT_KIND, patient, {"username": username})

    def link_existing(self) -> int:
        """Once per store: record the patient links of accounts made before links existed."""
        if self.store.get_record("config", "patient-account-links") is not None or not self.store.add_record(
                "config", "patient-account-links", {"since": time.time()}):
            return 0
        linked = 0
        for user in self.list():
            if user.role == "patient" and user.fhir_user and not user.disabled:
                linked += self.store.add_record(PATIENT_ACCOUNT_KIND, user.fhir_user.split("/", 1)[1],
                                                {"username": user.username})
        return linked

    def remove(self, username: str) -> None:
        """Undo an add whose other half failed (registration): the account and its patient link."""
        user = self.get(username)
        if user is not None and user.role == "patient":
            self.store.delete_record(PATIENT_ACCOUNT_KIND, user.fhir_user.split("/", 1)[1])
        self.store.delete_record(KIND, username)

    def get(self, username: str) -> User | None:
        record = self.store.get_record(KIND, username)
        return User(**record) if record else None

    def list(self) -> list[User]:
        return sorted((User(**value) for _key, value in self.store.list_records(KIND)), key=lambda u: u.username)

    def active(self, username) -> User | None:
        """The user if the account exists and is enabled: tokens and grants act only for such users."""
        user = self.get(str(username)) if username is not None else None
        return user if user is not None and not user.disabled else None

    def disable(self, username: str) -> bool:
        """Refuse the user's future logins; every access and refresh token of theirs is refused
        wherever it is presented (standing.py, within STANDING_TTL_S seconds); False if unknown."""
        user = self.get(username)
        if user is None:
            return False
        user.disabled = True
        self.store.put_record(KIND, username, asdict(user))
        standing.forget(self.store, KIND, username)     # at once here; other workers within seconds
        return True

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is right and the account enabled, else None.
        Raises LoginThrottled after max_failures failures within window_s (checked before the password)."""
        kind = f"{FAILURES_KIND}:{username.lower()}"
        now = time.time()
        recent = [v["at"] for _k, v in self.store.list_records(kind)]
        if len(recent) >= self.max_failures:
            oldest_that_counts = sorted(recent)[-self.max_failures]
            raise LoginThrottled(max(1, math.ceil(oldest_that_counts + self.window_s - now)))
        # every attempt is counted, atomically and before the password is checked, so that parallel
        # guesses cannot pass the check together and count once (a success clears them). The k-th
        # attempt to be recorded sees at least k records, so at most max_failures reach the hash; a
        # refused attempt stays counted (removing it could let a burst remove every record).
        attempt = secrets.token_hex(8)
        self.store.add_record(kind, attempt, {"at": now}, expires_at=now + self.window_s)
        if len(self.store.list_records(kind)) > self.max_failures:
            raise LoginThrottled(max(1, math.ceil(self.window_s)))
        user = self.get(username)
        # an unknown user costs one scrypt hash too, so response time does not reveal existing names
        ok = passwords.verify_password(password, user.password_hash if user else _dummy_hash())
        if not ok or user is None or user.disabled:
            return None
        for k, _v in self.store.list_records(kind):
            self.store.delete_record(kind, k)
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash_password(password)
            self.store.put_record(KIND, user.username, asdict(user))
        return user


def reference_type(reference: object) -> str | None:
    """The type of a relative reference "Type/id", or None if it is not one."""
    m = _REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
    return m.group("type") if m else None


def _check_fhir_user(role: str, fhir_user: str | None) -> None:
    wanted = _ROLE_TYPE.get(role)
    if fhir_user is None:
        if wanted:
            raise ValueError(f"a {role} needs a fhir_user like {wanted}/1")
        return
    rtype = reference_type(fhir_user)
    if rtype is None:
        raise ValueError(f"fhir_user {fhir_user!r} must be a reference like Type/id")
    if wanted and rtype != wanted:
        raise ValueError(f"the fhir_user of a {role} must be a {wanted}, not {fhir_user!r}")
    if rtype not in _FHIR_USER_TYPES:
        raise ValueError(f"fhir_user {fhir_user!r} must be one of {', '.join(_FHIR_USER_TYPES)}")


_dummies: dict[tuple[int, int, int], str] = {}


def _dummy_hash() -> str:
    """A hash with the current cost parameters, verified against when the username is unknown."""
    params = (passwords.N, passwords.R, passwords.P)
    if params not in _dummies:
        _dummies[params] = passwords.hash_password("not a password of anyone")
    return _dummies[params]
