"""The narrative's XHTML rules: what FHIRPath's htmlChecks() answers for txt-1 and txt-2.

http://hl7.org/fhir/R4/narrative.html#xhtml: Narrative.div is one XHTML <div> in the XHTML namespace that
holds only the basic formatting elements and attributes of HTML 4 chapters 7-11 and 12 (no head, body,
scripts, forms, styles sheets, base/link, frames, iframes or objects, no event handler attributes)
(txt-1), and some non-whitespace content (txt-2). The element and attribute lists are the ones the HL7 Java
validator accepts (InstanceValidator's XHTML checks); a link or image must not be active content
(javascript:, vbscript:). Document type and entity declarations and processing instructions are refused
before parsing (no entity expansion); comments are allowed.
"""
from __future__ import annotations

import functools
import html.entities
import re
import xml.etree.ElementTree as ET

XHTML = "{http://www.w3.org/1999/xhtml}"
ELEMENTS = frozenset(
    "p br div h1 h2 h3 h4 h5 h6 a span b em i strong small big tt dfn q var abbr acronym cite blockquote hr "
    "address bdo kbd sub sup ul ol li dl dt dd pre table caption colgroup col thead tr tfoot tbody th td code "
    "samp img map area".split())
ATTRIBUTES = frozenset(
    "title style class id lang xml:lang dir accesskey tabindex span width align valign char charoff abbr axis "
    "headers scope rowspan colspan".split())
ELEMENT_ATTRIBUTES = {
    "a": frozenset({"href", "name"}), "img": frozenset({"src", "alt", "title", "longdesc", "height", "width"}),
    "table": frozenset({"border", "cellpadding", "cellspacing", "summary", "frame", "rules", "width"}),
    "area": frozenset({"href", "shape", "coords", "alt", "nohref"}), "map": frozenset({"name"}),
    "ol": frozenset({"start", "type"}), "ul": frozenset({"type"}), "li": frozenset({"value", "type"}),
    "q": frozenset({"cite"}), "blockquote": frozenset({"cite"}), "td": frozenset({"nowrap"}),
    "th": frozenset({"nowrap"}), "col": frozenset({"span", "width"}), "colgroup": frozenset({"span", "width"}),
}
_ACTIVE = re.compile(r"^\s*(javascript|vbscript)\s*:", re.IGNORECASE)
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
_XML_ENTITIES = frozenset({"lt", "gt", "amp", "quot", "apos"})
_XML_NS = "{http://www.w3.org/XML/1998/namespace}"


def _numeric(match: re.Match) -> str:
    """HTML named character references (&nbsp;) as numeric ones, which XML knows without a DTD."""
    name = match.group(1)
    if name in _XML_ENTITIES or name not in html.entities.name2codepoint:
        return match.group(0)
    return f"&#{html.entities.name2codepoint[name]};"


@functools.lru_cache(maxsize=16)        # txt-1 and txt-2 read the same div one after the other
def parse(div: str):
    """The <div> element, or None when it is not well-formed XML or declares a document type."""
    if _DECLARATION.search(div) or "<?" in div:
        return None
    try:
        return ET.fromstring(_ENTITY.sub(_numeric, div))
    except ET.ParseError:
        return None


def _local(name: str) -> str | None:
    """An element's name within the XHTML namespace (None outside it)."""
    return name[len(XHTML):] if name.startswith(XHTML) else None


def _attribute_ok(element: str, name: str, value: str) -> bool:
    if name.startswith(_XML_NS):
        name = "xml:" + name[len(_XML_NS):]
    if name not in ATTRIBUTES and name not in ELEMENT_ATTRIBUTES.get(element, ()):
        return False
    return not (name in ("href", "src", "longdesc", "cite") and _ACTIVE.match(value))


def allowed(div: str) -> bool:
    """txt-1: one XHTML div holding only the allowed elements and attributes."""
    root = parse(div)
    if root is None or _local(root.tag) != "div":
        return False
    for node in root.iter():
        name = _local(node.tag) if isinstance(node.tag, str) else None
        if name not in ELEMENTS:
            return False
        if not all(_attribute_ok(name, a, v) for a, v in node.attrib.items()):
            return False
    return True


def has_content(div: str) -> bool:
    """txt-2: some non-whitespace text, or an image."""
    root = parse(div)
    if root is None:
        return False
    return any(t.strip() for t in root.itertext()) or any(_local(n.tag) == "img" for n in root.iter())


def valid(div: str) -> bool:
    return allowed(div) and has_content(div)
