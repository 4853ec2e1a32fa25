"""Where the authorization server lives and what it can do.

SMART App Launch 2.2 "Conformance" (/.well-known/smart-configuration and its capabilities),
OpenID Connect Discovery 1.0 (/.well-known/openid-configuration), and the oauth-uris extension
of the CapabilityStatement (App Launch 2.2, "Conformance", legacy but still read by clients).

The FHIR base is settings.base_url (e.g. http://host/fhir); the OAuth endpoints live beside it
under /auth; the issuer is the FHIR base.
"""
from __future__ import annotations

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

# exactly what this server implements
CAPABILITIES = [
    "launch-ehr", "launch-standalone", "authorize-post",
    "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-banner", "context-style", "context-ehr-patient", "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline", "permission-online", "permission-patient", "permission-user",
    "permission-v1", "permission-v2",
]
GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
ASSERTION_ALGS = ["RS384", "ES384"]
SCOPES = [
    "openid", "fhirUser", "launch", "launch/patient", "offline_access", "online_access",
    "patient/*.cruds", "patient/*.rs", "patient/*.read", "patient/*.write", "patient/*.*",
    "user/*.cruds", "user/*.rs", "user/*.read", "user/*.write", "user/*.*",
    "system/*.cruds", "system/*.rs", "system/*.read", "system/*.write", "system/*.*",
]


def auth_base(base_url: str) -> str:
    """http://host/fhir -> http://host/auth (a base without /fhir gets /auth appended)."""
    base = base_url.rstrip("/")
    return (base[: -len("/fhir")] if base.endswith("/fhir") else base) + "/auth"


def endpoints(base_url: str) -> dict[str, str]:
    auth = auth_base(base_url)
    return {name: f"{auth}/{name}" for name in
            ("authorize", "token", "introspect", "revoke", "jwks", "launch", "login", "logout", "consent")} | {
        "style": f"{auth}/smart-style.json"}


def _common(base_url: str) -> dict:
    """What both discovery documents say alike."""
    e = endpoints(base_url)
    return {
        "issuer": base_url,
        "jwks_uri": e["jwks"],
        "authorization_endpoint": e["authorize"],
        "token_endpoint": e["token"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }


def smart_configuration(base_url: str) -> dict:
    e = endpoints(base_url)
    return _common(base_url) | {
        "introspection_endpoint": e["introspect"],
        "revocation_endpoint": e["revoke"],
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "scopes_supported": SCOPES,
        "capabilities": CAPABILITIES,
    }


def openid_configuration(base_url: str) -> dict:
    return _common(base_url) | {
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }


def oauth_uris_extension(base_url: str) -> dict:
    """The oauth-uris extension for CapabilityStatement.rest.security."""
    e = endpoints(base_url)
    return {"url": OAUTH_URIS, "extension": [
        {"url": name, "valueUri": e[name]} for name in ("authorize", "token", "introspect", "revoke")]}


SMART_STYLE = {
    "color_background": "#edeae3",
    "color_error": "#9e2d2d",
    "color_highlight": "#69b5ce",
    "color_modal_backdrop": "",
    "color_success": "#498e49",
    "color_text": "#303030",
    "dim_border_radius": "6px",
    "dim_font_size": "13px",
    "dim_spacing_size": "20px",
    "font_family_body": "Georgia, Times, 'Times New Roman', serif",
    "font_family_heading": "'HelveticaNeue-Light', Helvetica, Arial, 'Lucida Grande', sans-serif",
}
