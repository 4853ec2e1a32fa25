"""User accounts of the authorization server: who may log in, as which FHIR user, with what role.

Users are store records of kind "user" keyed by username; passwords are scrypt hashes
(passwords.py). The fhirUser of a patient or practitioner is the resource the SMART
`fhirUser` claim names (SMART App Launch 2.2, "Scopes for requesting identity data").

Online guessing (OWASP Authentication and Credential Stuffing cheat sheets; NIST SP 800-63B
5.2.2 "Rate limiting") is slowed per (username, client address) and bounded per username:

- per pair: the first FREE_FAILURES failures cost nothing; after that each further attempt from
  that address must wait a delay that doubles with every failure (1 s, 2 s, 4 s ... capped at
  MAX_DELAY_S), counted over PAIR_WINDOW_S (records of kind "login-pair:<name>|<address>"). An
  attempt made too early is refused with Retry-After and not counted; a success clears the pair.
  An attacker at another address therefore cannot lock the real user out (no hard lockout).
- per username, across all addresses: ACCOUNT_LIMIT failures within ACCOUNT_WINDOW_S (records of
  kind "login-failures:<name>"), a bound on distributed guessing far above what a person types.

IPv6 addresses count by their /64 (one host usually holds a whole /64). Every attempt is recorded
atomically before the password is checked, so parallel guesses are all counted. Unknown usernames
are counted and cost the same scrypt work as known ones, so neither timing nor throttling tells
which names exist.
"""
from __future__ import annotations

import ipaddress
import math
import re
import secrets
import time
from dataclasses import asdict, dataclass

from . import passwords, standing

KIND = "user"
FAILURES_KIND = "login-failures"          # per username, every address
PAIR_KIND = "login-pair"                  # per (username, client address)
FREE_FAILURES = 3
MAX_DELAY_S = 900
PAIR_WINDOW_S = 24 * 3600           # long enough that the count cannot decay below the cap
ACCOUNT_LIMIT = 100
ACCOUNT_WINDOW_S = 3600
PATIENT_ACCOUNT_KIND = "patient-account"     # Patient id -> username: one account per patient record
ROLES = ("patient", "practitioner", "admin", "related-person")   # related-person: a family proxy
ROLES += ("regulator",)     # reads AuditEvent, Provenance and Consent of the whole exchange (access.py)
MIN_PASSWORD = 8

_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}")   # FHIR R4 id syntax
_ROLE_TYPE = {"patient": "Patient", "practitioner": "Practitioner", "related-person": "RelatedPerson"}
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
    break_glass: bool = False      # may open emergency access to a patient (governance/break_glass.py)

    def public(self) -> dict:
        """JSON view, without the password hash."""
        view = asdict(self)
        del view["password_hash"]
        if not view["break_glass"]:           # shown when held
            del view["break_glass"]
        return view


class LoginThrottled(Exception):
    """Too many failed logins recently (from this address, or for this username from everywhere);
    retry_after is in seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


class Users:
    def __init__(self, store, free_failures: int = FREE_FAILURES, max_delay_s: float = MAX_DELAY_S,
                 pair_window_s: float = PAIR_WINDOW_S, account_limit: int = ACCOUNT_LIMIT,
                 account_window_s: float = ACCOUNT_WINDOW_S):
        self.store = store
        self.free_failures, self.max_delay_s, self.pair_window_s = free_failures, max_delay_s, pair_window_s
        self.account_limit, self.account_window_s = account_limit, account_window_s

    def add(self, username: str, password: str, role: str, fhir_user: str | None = None,
            organization: str | None = None, *, password_hash: str | None = None,
            break_glass: bool = False) -> User:
        """Create a user; ValueError says what is wrong (including a taken username). password_hash:
        an scrypt hash made earlier (a registration confirmed later), used instead of password.
        break_glass: the privilege of emergency access (practitioners only)."""
        if not isinstance(username, str) or not _USERNAME.fullmatch(username):
            raise ValueError(f"username {username!r} must be 1-64 of A-Z a-z 0-9 . _ @ -")
        if role not in ROLES:
            raise ValueError(f"role {role!r} must be one of {', '.join(ROLES)}")
        _check_fhir_user(role, fhir_user)
        if organization is not None and reference_type(organization) != "Organization":
            raise ValueError(f"organization {organization!r} must be a reference like Organization/1")
        if break_glass and role != "practitioner":
            raise ValueError("only a practitioner may hold the break-glass privilege")
        if password_hash is None and (not isinstance(password, str) or len(password) < MIN_PASSWORD):
            raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
        user = User(username, role, fhir_user, organization,
                    password_hash=password_hash or passwords.hash_password(password), break_glass=bool(break_glass))
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

    def authenticate(self, username: str, password: str, address: str | None = None) -> User | None:
        """The user if the password is right and the account enabled, else None. address is the
        client's (request.remote_addr). Raises LoginThrottled, checked before the password: while
        this address must wait before its next try, or past the per-username bound."""
        name = username.lower()
        pair_kind = f"{PAIR_KIND}:{name}|{client_key(address)}"
        account_kind = f"{FAILURES_KIND}:{name}"
        now = time.time()
        pair = self._times(pair_kind)
        wait = self._pair_wait(pair, len(pair), now)
        if wait > 0:                         # too early: refused, and not counted
            raise LoginThrottled(max(1, math.ceil(wait)))
        account = self._times(account_kind)
        if len(account) >= self.account_limit:
            raise LoginThrottled(max(1, math.ceil(account[-self.account_limit] + self.account_window_s - now)))
        # every attempt is counted, atomically and before the password is checked, and judged again
        # against every other recorded attempt (parallel ones included): the k-th to be recorded
        # sees at least k-1 others, so parallel guesses cannot pass the check together. One that
        # is refused stays counted (removing it could let a burst erase the count).
        attempt = secrets.token_hex(8)
        self.store.add_record(pair_kind, attempt, {"at": now}, expires_at=now + self.pair_window_s)
        self.store.add_record(account_kind, attempt, {"at": now}, expires_at=now + self.account_window_s)
        pair = self.store.list_records(pair_kind)
        others = sorted(v["at"] for k, v in pair if k != attempt)
        wait = self._pair_wait(others, len(others), now)
        if wait > 0:
            raise LoginThrottled(max(1, math.ceil(wait)))
        if len(self.store.list_records(account_kind)) > self.account_limit:
            raise LoginThrottled(max(1, math.ceil(self.account_window_s)))
        user = self.get(username)
        # an unknown user costs one scrypt hash too, so response time does not reveal existing names
        ok = passwords.verify_password(password, user.password_hash if user else _dummy_hash())
        if not ok or user is None or user.disabled:
            return None
        for k, _v in pair:          # this address may start afresh; others' failures still count
            self.store.delete_record(pair_kind, k)
        self.store.delete_record(account_kind, attempt)
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash_password(password)
            self.store.put_record(KIND, user.username, asdict(user))
        return user

    def _times(self, kind: str) -> list[float]:
        return sorted(v["at"] for _k, v in self.store.list_records(kind))

    def _pair_wait(self, earlier: list[float], failures: int, now: float) -> float:
        """Seconds the attempt after `failures` earlier ones (their times: `earlier`) must still wait."""
        if failures < self.free_failures or not earlier:
            return 0.0
        delay = min(2.0 ** (failures - self.free_failures), self.max_delay_s)
        return max(earlier) + delay - now


def client_key(address: str | None) -> str:
    """The client address a throttle counts by: an IPv4 address, or the /64 of an IPv6 one."""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return "-"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


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
