"""What /fhir/openapi.json says about authorization and media types, so that Swagger UI at /fhir/docs
has an Authorize button and "Try it out" works with a token.

Security schemes (OpenAPI 3.0.3 "Security Scheme Object"): `smart`, OAuth 2 with the authorization
code flow (PKCE S256, SMART App Launch 2.2) and the client credentials flow (Backend Services),
against this server's /auth/authorize and /auth/token; and `bearer`, an HTTP bearer JWT (a token got
elsewhere, pasted). Every /fhir operation that needs a token (smart_auth/bearer.py) requires one of
them; the open ones (metadata, .well-known, $verify-health-card) and the non-FHIR routes do not.
When the server runs with --auth off nothing requires them.

Media types: FHIR request bodies are application/fhir+json (JSON Patch for PATCH, a form for POST
_search) and answers application/fhir+json; errors are OperationOutcome resources.

Swagger UI's own OAuth settings (PKCE, the `aud` parameter SMART requires, the redirect page it
ships) are not part of the document: initOAuth is called from the page (the swagger_ui.html template
below replaces flask-smorest's, adding that one call).
"""
from __future__ import annotations

from apispec import BasePlugin
from jinja2 import ChoiceLoader, DictLoader

from .smart_auth.bearer import is_open
from .smart_auth.discovery import auth_base, endpoints

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
FORM = "application/x-www-form-urlencoded"
SECURITY = [{"smart": []}, {"bearer": []}]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
SCOPES = {
    "openid": "Identify the signed-in user (id token)",
    "fhirUser": "The user's FHIR resource in the id token",
    "launch/patient": "Choose a patient at sign-in (standalone launch)",
    "offline_access": "A refresh token that outlives the sign-in",
    "online_access": "A refresh token while signed in",
    "patient/*.cruds": "Everything in the chosen patient's record",
    "patient/*.rs": "Read and search the chosen patient's record",
    "user/*.cruds": "Everything the user may do",
    "user/*.rs": "Read and search what the user may see",
    "system/*.rs": "Backend services: read and search",
    "system/*.cruds": "Backend services: everything",
}
RESOURCE = {"type": "object", "required": ["resourceType"], "additionalProperties": True,
            "properties": {"resourceType": {"type": "string"}},
            "description": "A FHIR R4 resource in JSON (https://hl7.org/fhir/R4/json.html)"}
OUTCOME = {"type": "object", "required": ["resourceType", "issue"], "additionalProperties": True,
           "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                          "issue": {"type": "array", "items": {"type": "object"}}}}
PATCH = {"type": "array", "items": {"type": "object", "required": ["op", "path"], "additionalProperties": True,
                                    "properties": {"op": {"type": "string"}, "path": {"type": "string"}}}}


class SecurityPlugin(BasePlugin):
    """An apispec plugin: the security schemes, and per operation its security and media types."""

    def __init__(self, settings):
        self.settings = settings

    def init_spec(self, spec):
        super().init_spec(spec)
        e = endpoints(self.settings.base_url)
        spec.components.security_scheme("smart", {
            "type": "oauth2",
            "description": "SMART on FHIR (App Launch 2.2): authorization code with PKCE S256 (required; send "
                           f"aud={self.settings.base_url}) for apps, client credentials for backend services. "
                           "Clients are registered with `medport client add`.",
            "flows": {
                "authorizationCode": {"authorizationUrl": e["authorize"], "tokenUrl": e["token"],
                                      "refreshUrl": e["token"], "scopes": dict(SCOPES)},
                "clientCredentials": {"tokenUrl": e["token"],
                                      "scopes": {k: v for k, v in SCOPES.items() if k.startswith("system/")}},
            }})
        spec.components.security_scheme("bearer", {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "An access token from /auth/token (paste it without 'Bearer ')."})
        spec.components.schema("FhirResource", RESOURCE)
        spec.components.schema("OperationOutcome", OUTCOME)
        spec.components.schema("JsonPatch", PATCH)

    def operation_helper(self, path=None, operations=None, **kwargs):
        if not path or not path.startswith("/fhir") or not operations:
            return
        protected = self.settings.auth != "off" and not is_open(path)
        for method, op in operations.items():
            if method not in METHODS or not isinstance(op, dict):
                continue
            if protected:
                op["security"] = [dict(s) for s in SECURITY]
            if method in ("post", "put", "patch") and "requestBody" not in op:
                op["requestBody"] = _request_body(path, method)
            responses = op.setdefault("responses", {})
            resource = {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/FhirResource"}}}
            responses.setdefault("200", {"description": "A FHIR resource or Bundle", "content": resource})
            outcome = {"description": "An OperationOutcome",
                       "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}}
            responses["default"] = outcome
            if protected:
                responses.setdefault("401", {**outcome, "description": "No valid bearer token"})
                responses.setdefault("403", {**outcome, "description": "The token's scopes do not allow this"})


def _request_body(path: str, method: str) -> dict:
    resource = {"schema": {"$ref": "#/components/schemas/FhirResource"}}
    if method == "post" and path.endswith("/_search"):
        return {"required": False, "content": {FORM: {"schema": {"type": "object", "additionalProperties": True}}}}
    if method == "patch":
        return {"required": True, "content": {JSON_PATCH: {"schema": {"$ref": "#/components/schemas/JsonPatch"}},
                                              FHIR_JSON: resource}}
    if "$" in path:      # operations take a Parameters resource (some also their own JSON or text)
        return {"required": False, "content": {FHIR_JSON: resource, "application/json": resource}}
    return {"required": True, "content": {FHIR_JSON: resource}}


# flask-smorest's Swagger UI page, plus the one call that passes Swagger UI's OAuth settings
SWAGGER_UI_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{title}}</title>
<link href="{{swagger_ui_url}}swagger-ui.css" rel="stylesheet" type="text/css"/></head>
<body>
<main id="swagger-ui-container"></main>
<script src="{{swagger_ui_url}}swagger-ui-standalone-preset.js"></script>
<script src="{{swagger_ui_url}}swagger-ui-bundle.js"></script>
<script>
var config = {url: "{{ spec_url }}", dom_id: '#swagger-ui-container'};
var override_config = {{ swagger_ui_config | tojson }};
for (var attrname in override_config) { config[attrname] = override_config[attrname]; }
window.onload = function() {
  window.ui = SwaggerUIBundle(config);
  if (config.initOAuth) { window.ui.initOAuth(config.initOAuth); }
};
</script>
</body>
</html>"""


def install(app, settings, swagger_static: str) -> SecurityPlugin:
    """Swagger UI's OAuth settings and page; the plugin to give flask-smorest's Api (extra_plugins)."""
    app.config.setdefault("OPENAPI_SWAGGER_UI_CONFIG", {
        "oauth2RedirectUrl": auth_base(settings.base_url)[:-len("/auth")] + swagger_static + "oauth2-redirect.html",
        "persistAuthorization": False,
        "initOAuth": {"usePkceWithAuthorizationCodeGrant": True, "scopes": "openid fhirUser user/*.rs",
                      "additionalQueryStringParams": {"aud": settings.base_url}},
    })
    app.jinja_env.loader = ChoiceLoader([DictLoader({"swagger_ui.html": SWAGGER_UI_TEMPLATE}),
                                         app.jinja_env.loader])
    return SecurityPlugin(settings)
