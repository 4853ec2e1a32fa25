"""Submit an HTML form as a browser does (HTML Living Standard "constructing the entry list"): only
the controls of that form, checkboxes and radios only when checked, text fields with their value,
and the one submit button that was pressed. Tests untick a box or type into a field first, as a
user would, and then see what the server re-renders."""
from __future__ import annotations

from html.parser import HTMLParser


class Form:
    def __init__(self, method: str, action: str):
        self.method, self.action = method, action
        self.controls: list[dict] = []       # {"tag", "type", "name", "value", "checked"}


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = Form((a.get("method") or "get").lower(), a.get("action") or "")
            self.forms.append(self._form)
        elif tag in ("input", "button") and self._form is not None and a.get("name"):
            kind = (a.get("type") or ("submit" if tag == "button" else "text")).lower()
            self._form.controls.append({"tag": tag, "type": kind, "name": a["name"], "value": a.get("value") or "",
                                        "checked": "checked" in a})

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def forms(html: str) -> list[Form]:
    parser = _Parser()
    parser.feed(html)
    return parser.forms


def post_form(html: str) -> Form:
    return next(f for f in forms(html) if f.method == "post")


def checked(html: str, name: str) -> list[str]:
    """The values of the checked boxes (or radio) called name in the page's POST form."""
    return [c["value"] for c in post_form(html).controls
            if c["name"] == name and c["type"] in ("checkbox", "radio") and c["checked"]]


def offered(html: str, name: str) -> list[str]:
    return [c["value"] for c in post_form(html).controls if c["name"] == name and c["type"] in ("checkbox", "radio")]


def submit(http, html: str, button: tuple[str, str], untick=(), tick=(), choose: dict | None = None,
           fill: dict | None = None):
    """Press button (name, value) of the page's POST form after unticking/ticking checkbox values,
    choosing radio values ({name: value}) and filling text fields ({name: text})."""
    form = post_form(html)
    data: list[tuple[str, str]] = []
    pressed = False
    for c in form.controls:
        kind = c["type"]
        if kind in ("submit", "image"):
            if (c["name"], c["value"]) == tuple(button) and not pressed:
                data.append((c["name"], c["value"]))
                pressed = True
        elif kind == "checkbox":
            on = (c["checked"] or c["value"] in tick) and c["value"] not in untick
            if on:
                data.append((c["name"], c["value"]))
        elif kind == "radio":
            want = (choose or {}).get(c["name"])
            if (c["value"] == want) if want is not None else c["checked"]:
                data.append((c["name"], c["value"]))
        else:
            value = (fill or {}).get(c["name"], c["value"])
            data.append((c["name"], value))
    assert pressed, f"no button {button} in the form"
    body = {}
    for name, value in data:
        body.setdefault(name, []).append(value)
    return http.post(form.action, data=body)
