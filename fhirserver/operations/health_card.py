"""Patient/[id]/$health-card: the patient's SMART Health Card (profiles/operations/Patient-health-card.json).

format=json (default): a Parameters with the signed card (verifiableCredential) and its numeric QR
text (qr); format=file: the .smart-health-card file; format=qr: the shc:/ text; format=png: the QR
code image. immunizations=true adds the patient's completed immunizations that the issuer attests
(health_cards/issuance.py).

GET is allowed: the operation changes no resource (affectsState false). The AuditEvent it writes does
not count as a change of state (OperationDefinition.affectsState: "Side effects such as producing audit
trail entries do not count as 'affecting state'", http://hl7.org/fhir/R4/operationdefinition-definitions.html#OperationDefinition.affectsState),
and is written only when a card is actually handed out: a card too large for the QR code asked for
(422) is not recorded as issued."""
from __future__ import annotations

from .. import jsonio
from ..errors import BadRequest, Unprocessable
from ..health_cards import issuance, qr
from . import Raw
from .parameters import first, flag

FORMATS = ("json", "file", "qr", "png")


def health_card(ctx, rtype, id, params: dict) -> dict | Raw:
    fmt = first(params, "format", "json")
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    immunizations = flag(params, "immunizations")
    card = issuance.sign(ctx, id, immunizations)
    answer = _render(card.jws, fmt)
    issuance.record(ctx, card)          # only a card that is handed out is recorded as issued
    return answer


def _render(card: str, fmt: str) -> dict | Raw:
    if fmt == "file":
        return Raw(jsonio.dumps({"verifiableCredential": [card]}), "application/smart-health-card")
    try:
        numeric = qr.to_numeric(card)
        image = qr.png(numeric) if fmt == "png" else None
    except qr.TooLargeForQR as e:
        if fmt != "json":
            raise Unprocessable(f"{e}: ask without immunizations, or for format=file") from None
        numeric = None
    if fmt == "qr":
        return Raw(numeric.encode(), "text/plain")
    if fmt == "png":
        return Raw(image, "image/png")
    out = [{"name": "verifiableCredential", "valueString": card}]
    if numeric:
        out.append({"name": "qr", "valueString": numeric})
    return {"resourceType": "Parameters", "parameter": out}
