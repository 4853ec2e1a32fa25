"""SMART Health Cards: issue and verify signed, QR-printable health records.

A card is a compact JWS (ES256 on P-256, DEFLATE-compressed payload) whose payload is a W3C
Verifiable Credential carrying a minimal FHIR R4 Bundle; see https://spec.smarthealth.cards/.

    issuer_keys  the issuer's P-256 signing keys, kept in the store, and the JWKS to publish
    credential   the minimal FHIR Bundle and the JWT claims of a card
    jws          signing and parsing the compact JWS, checking an ES256 signature
    qr           the numeric "shc:/" form and the QR image
    verify       checking a card as a verifier does, with problems a clerk can read
"""
