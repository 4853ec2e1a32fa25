"""Patient/[id]/$health-card: the patient's SMART Health Card (profiles/operations/Patient-health-card.json).

format=json (default): a Parameters with the signed card (verifiableCredential) and its numeric QR
text (qr); format=file: the .smart-health-card file; format=qr: the shc:/ text; format=png: the QR
code image. immunizations=true adds the patient's completed immunizations."""
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
    card = issuance.issue(ctx, id, immunizations)
    if fmt == "file":
        return Raw(jsonio.dumps({"verifiableCredential": [card]}), "application/smart-health-card")
    try:
        numeric = qr.to_numeric(card)
    except qr.TooLargeForQR as e:
        if fmt != "json":
            raise Unprocessable(f"{e}: ask without immunizations, or for format=file") from None
        numeric = None
    if fmt == "qr":
        return Raw(numeric.encode(), "text/plain")
    if fmt == "png":
        return Raw(qr.png(numeric), "image/png")
    out = [{"name": "verifiableCredential", "valueString": card}]
    if numeric:
        out.append({"name": "qr", "valueString": numeric})
    return {"resourceType": "Parameters", "parameter": out}
