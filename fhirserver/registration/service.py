"""Registering a person: their Patient (with UHID) and self-reported allergies and conditions in one
transaction, their patient account linked to it, and their first health card.

No enumeration oracle (OWASP Authentication cheat sheet, "Authentication and error messages"; issue
12 finding 9): start() answers alike whether or not the person, or anyone, is already registered,
and continues out of band through the outbox (fhirserver/outbox.py). Each phone or email given gets
a message: a contact that is already on a record with this name and birth date gets "you are
already registered" (nothing is created); any other contact gets a confirmation code, and
confirm(code) then registers the person with the contacts that received it (so the registration
also proves them). Usernames are assigned by the server (given name + random suffix) and sent with
the UHID, so a taken username is never told either.

Order, so that nothing is left half made: the account is reserved first (naming the Patient id
chosen up front), then the transaction writes the records; if it fails the account is removed
again. A person whose record a hospital already made claims it with the UHID and the claim code the
hospital gave them (claim_codes.py), with their family name and birth date."""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import asdict, dataclass, replace

from .. import audit, jsonio, outbox
from ..errors import Conflict, Issue, NotFound, StoreUnavailable
from ..health_cards import issuance
from ..interactions import transaction as transaction_i
from ..interactions.common import new_id
from ..search.normalize import fold
from ..search.parse import parse_search
from ..smart_auth import auth_audit, passwords
from ..smart_auth.access import UNRESTRICTED, Access
from ..smart_auth.accounts import Users
from ..uhid import identifier, matching
from . import claim_codes
from .form import Registration

log = logging.getLogger("medport.registration")
IN_FLIGHT_KIND, IN_FLIGHT_S = "registering", 300
PENDING_KIND, PENDING_S = "registration-pending", 1800      # confirmation codes: 30 minutes
CODE_LENGTH = 10                     # from claim_codes.ALPHABET: 50 bits, typed from a message
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
CLINICAL = {"AllergyIntolerance": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "Condition": "http://terminology.hl7.org/CodeSystem/condition-clinical"}
VERIFICATION = {"AllergyIntolerance": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "Condition": "http://terminology.hl7.org/CodeSystem/condition-ver-status"}


@dataclass
class Registered:
    patient_id: str
    uhid: str
    username: str
    card: str | None    # the first health card (compact JWS); None if it could not be made just now
    claimed: bool       # an existing record was claimed, not a new one made


class PossibleDuplicate(Conflict):
    """409 at confirmation (the person proved the contact): the same person was registered meanwhile;
    with the choices open to them (never which record was found)."""


def register(ctx, reg: Registration) -> Registered | None:
    """A claim (uhid + claimCode) is answered at once; anything else starts a registration that
    continues out of band (None: the same for every person, registered or not)."""
    if reg.uhid:
        return _claim(ctx, reg)
    start(ctx, reg)
    return None


def start(ctx, reg: Registration) -> None:
    """Send each contact its message (see the module's docstring); answer nothing."""
    contacts = [(channel, value) for channel, value in (("sms", reg.phone), ("email", reg.email)) if value]
    fresh = []
    for channel, value in contacts:
        if not reg.confirm_new_identity and _on_record(ctx, reg, channel, value):
            outbox.send(ctx.store, channel, value, "Your Unique Health ID registration", ALREADY)
        else:
            fresh.append((channel, value))
    if not fresh:
        return
    phone = next((v for c, v in fresh if c == "sms"), None)
    email = next((v for c, v in fresh if c == "email"), None)
    pending = asdict(replace(reg, phone=phone, email=email, password="", username=""))
    pending["password_hash"] = passwords.hash_password(reg.password)
    code = claim_codes.draw(CODE_LENGTH)
    ctx.store.put_record(PENDING_KIND, _code_key(code), pending, expires_at=time.time() + PENDING_S)
    shown = claim_codes.grouped(code)
    for channel, value in fresh:
        outbox.send(ctx.store, channel, value, "Your Unique Health ID registration code", CODE_MESSAGE.format(
            code=shown, minutes=PENDING_S // 60))


def confirm(ctx, code: str) -> Registered:
    """Register the person whose confirmation code this is (single use). NotFound for any unknown,
    used or expired code; PossibleDuplicate if the same person was registered meanwhile (the caller
    has just proved they hold the contact, so this tells them only about themselves)."""
    record = ctx.store.take_record(PENDING_KIND, _code_key(code)) if isinstance(code, str) and len(code) < 40 \
        else None
    if record is None:
        raise NotFound("This confirmation code is unknown, used or expired: register again to get a new one",
                       expression=("code",))
    password_hash = record.pop("password_hash")
    reg = Registration(**record)
    if reg.confirm_new_identity:
        return _create(ctx, reg, password_hash)
    # the same person confirming twice at once (two codes, a double click): the duplicate check sees
    # only what is committed, so each person key is held while one registration of that person runs
    keys = _person_keys(reg)
    held = [k for k in keys if ctx.store.add_record(IN_FLIGHT_KIND, k, {}, expires_at=time.time() + IN_FLIGHT_S)]
    try:
        probe = patient_resource(reg, None)
        if len(held) < len(keys) or any(
                c.grade == "certain" for c in matching.find(ctx.acting_as(UNRESTRICTED), probe, ctx.uhid_system)):
            raise _duplicate(ctx)
        return _create(ctx, reg, password_hash)
    finally:
        for key in held:
            ctx.store.delete_record(IN_FLIGHT_KIND, key)


ALREADY = ("Someone (perhaps you) asked to register for a Unique Health ID with your name, birth date and "
           "this contact. A record with these details already exists, so nothing was created. If it is "
           "yours, sign in with your account; if a hospital registered you, ask it for a claim code. If you "
           "are a different person with the same details, register again and tick \"I am a different "
           "person\". If it was not you, you can ignore this message.")
CODE_MESSAGE = ("Your Unique Health ID registration code is {code}. Enter it on the registration page within "
                "{minutes} minutes. If you did not ask to register, ignore this message.")
DONE_MESSAGE = ("You are registered. Your Unique Health ID is {uhid}. Sign in to health apps with the "
                "username {username} and the password you chose.")


def _on_record(ctx, reg: Registration, channel: str, value: str) -> bool:
    """Whether a record with this name and birth date already has this phone or email."""
    probe = patient_resource(replace(reg, phone=value if channel == "sms" else None,
                                     email=value if channel == "email" else None), None)
    return any(c.grade == "certain" for c in matching.find(ctx.acting_as(UNRESTRICTED), probe, ctx.uhid_system))


def _code_key(code: str) -> str:
    return hashlib.sha256(("registration:" + claim_codes.normal(code)).encode()).hexdigest()


def _new_account(users: Users, reg: Registration, pid: str, password_hash: str | None = None) -> str:
    """A server-assigned username (given name + 6 random characters): never one the person chose, so
    no answer can tell which usernames are taken; a collision is simply drawn again."""
    stem = re.sub(r"[^a-z]", "", fold(reg.given.split()[0]) if reg.given.split() else "")[:20] or "patient"
    for _ in range(8):
        username = f"{stem}-{claim_codes.draw(6, claim_codes.ALPHABET.lower())}"
        if users.get(username) is not None:
            continue
        try:
            users.add(username, reg.password, "patient", f"Patient/{pid}", password_hash=password_hash)
            return username
        except ValueError as e:
            if "already has an account" in str(e):
                raise
    raise StoreUnavailable("Could not assign a username; try again")


def _person_keys(reg: Registration) -> list[str]:
    """The duplicate rule's keys: name, birth date, and the phone or the email."""
    who = f"{fold(reg.family)}|{fold(reg.given.split()[0])}|{reg.birth_date}"
    contacts = ([f"phone:{matching.phone_key(reg.phone)}"] if reg.phone else []) + (
        [f"email:{reg.email.strip().lower()}"] if reg.email else [])
    return [hashlib.sha256(f"{who}|{c}".encode()).hexdigest() for c in contacts]


def _create(ctx, reg: Registration, password_hash: str) -> Registered:
    pid = new_id()
    users = Users(ctx.store)
    username = _new_account(users, reg, pid, password_hash)
    try:
        results = transaction_i.transaction(_as_person(ctx, username, pid), _bundle(reg, pid))
    except Exception:
        users.remove(username)
        raise
    patient = jsonio.loads(results[0].version.body)
    done = _finish(ctx, username, pid, identifier.value_of(patient, ctx.uhid_system), "registration", False)
    for channel, value in (("sms", reg.phone), ("email", reg.email)):
        if value:
            outbox.send(ctx.store, channel, value, "Your Unique Health ID",
                        DONE_MESSAGE.format(uhid=done.uhid, username=username))
    return done


def _claim(ctx, reg: Registration) -> Registered:
    """The record a hospital made: the claim code must be this record's, and the family name and
    birth date must agree (one answer for every mismatch: the form tells nothing about the UHID)."""
    query = parse_search("Patient", [("identifier", f"{ctx.uhid_system}|{reg.uhid}")]).query
    found = ctx.store.search("Patient", query, limit=1, total="none").items
    patient = jsonio.loads(found[0].body) if found else None
    names = [fold(n.get("family") or "") for n in (patient or {}).get("name") or ()]
    if (patient is None or not claim_codes.holds(ctx.store, reg.claim_code or "", patient["id"])
            or patient.get("birthDate") != reg.birth_date or fold(reg.family) not in names):
        raise NotFound("No record has this UHID with this claim code, family name and birth date",
                       expression=("claimCode",))
    pid = patient["id"]
    users = Users(ctx.store)
    try:
        username = _new_account(users, reg, pid)
    except ValueError as e:
        raise Conflict(f"{e}: sign in with it, or ask your hospital to help", expression=("claimCode",)) from None
    if not claim_codes.redeem(ctx.store, reg.claim_code, pid):       # used at the same moment by another
        users.remove(username)
        raise Conflict("This claim code has just been used", expression=("claimCode",))
    return _finish(ctx, username, pid, reg.uhid, "claim", True)


def _finish(ctx, username: str, pid: str, uhid: str, how: str, claimed: bool) -> Registered:
    """After the registration is committed: its AuditEvent and the first card. A transient store
    conflict is retried here, never by running the registration again (it would now be a duplicate)."""
    person = _as_person(ctx, username, pid)
    _after_commit(lambda: audit.record(
        person, type_code=("110110", "Patient Record"), subtype=(how, f"self-{how}"),
        action="C" if not claimed else "U", what=f"Patient/{pid}",
        description=f"account {username} {'claimed the record' if claimed else 'registered'}"))
    auth_audit.registered(username, f"Patient/{pid}", pid, how)
    return Registered(pid, uhid, username, _after_commit(lambda: issuance.issue(person, pid)), claimed)


def _after_commit(step):
    for attempt in range(3):
        try:
            return step()
        except StoreUnavailable:
            if attempt == 2:
                log.exception("a step after a committed registration failed")
                return None
            time.sleep(0.05 * (attempt + 1))


def patient_resource(reg: Registration, pid: str | None) -> dict:
    patient = {"resourceType": "Patient", "active": True,
               "name": [{"use": "official", "family": reg.family, "given": reg.given.split()}],
               "gender": reg.gender, "birthDate": reg.birth_date,
               "telecom": [t for t in ({"system": "phone", "value": reg.phone, "use": "mobile"} if reg.phone else None,
                                       {"system": "email", "value": reg.email} if reg.email else None) if t]}
    if pid:
        patient["id"] = pid
    if reg.emergency_name or reg.emergency_phone:
        contact = {"relationship": [{"coding": [{"system": V2_0131, "code": "C", "display": "Emergency Contact"}]}]}
        if reg.emergency_relationship:
            contact["relationship"].append({"text": reg.emergency_relationship})
        if reg.emergency_name:
            contact["name"] = {"text": reg.emergency_name}
        if reg.emergency_phone:
            contact["telecom"] = [{"system": "phone", "value": reg.emergency_phone}]
        patient["contact"] = [contact]
    return patient


def _bundle(reg: Registration, pid: str) -> dict:
    """The Patient and what the person reports: AllergyIntolerance and Condition, unconfirmed
    (a clinician confirms them), asserted by the patient."""
    me = {"reference": f"Patient/{pid}"}
    entries = [{"resource": patient_resource(reg, pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}}]
    for rtype, texts, subject in (("AllergyIntolerance", reg.allergies, "patient"),
                                  ("Condition", reg.conditions, "subject")):
        for text in texts:
            entries.append({"request": {"method": "POST", "url": rtype}, "resource": {
                "resourceType": rtype, subject: me, "asserter": me, "code": {"text": text},
                "clinicalStatus": {"coding": [{"system": CLINICAL[rtype], "code": "active"}]},
                "verificationStatus": {"coding": [{"system": VERIFICATION[rtype], "code": "unconfirmed"}]}}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _duplicate(ctx) -> PossibleDuplicate:
    system = f"{ctx.base}/CodeSystem/registration-choice"
    choices = [("sign-in", "If you registered before, sign in with that account (no new registration is needed)."),
               ("claim-with-uhid", "If a hospital registered you, enter the UHID from your card to use that record."),
               ("confirm-new-identity", "If you are a different person with the same name, birth date and contact, "
                                        "register again confirming that you are not that person.")]
    return PossibleDuplicate(issues=[
        Issue("A person with this name, birth date and phone or email is already registered. "
              "To keep one record per person, nothing was created.", "duplicate")] + [
        Issue(text, "informational", "information", details={"coding": [{"system": system, "code": code}]})
        for code, text in choices])


def _as_person(ctx, username: str, pid: str):
    """Unrestricted rights (the server writes on the person's behalf) with their identity for the audit."""
    return ctx.acting_as(Access(None, None, {"sub": username, "fhirUser": f"Patient/{pid}"}))
