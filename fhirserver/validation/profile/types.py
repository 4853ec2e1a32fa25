"""FHIR R4 data type names the validator needs (datatypes.html, formats.html#choice).

A choice element `value[x]` appears in JSON as `value` + the type name with its first letter upper
case (`valueQuantity`, `valueDateTime`); primitives may carry a `_name` twin with id/extension
(json.html#primitive). Element ids and Extension.url are typed with FHIRPath system types
(http://hl7.org/fhirpath/System.String), which are primitives too.
"""
from __future__ import annotations

import re

PRIMITIVES = frozenset((
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id", "instant",
    "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt", "uri", "url", "uuid",
    "xhtml"))
COMPLEX = frozenset((
    "Address", "Age", "Annotation", "Attachment", "CodeableConcept", "Coding", "ContactPoint", "Count",
    "Distance", "Duration", "HumanName", "Identifier", "Money", "Period", "Quantity", "Range", "Ratio",
    "Reference", "SampledData", "Signature", "Timing", "ContactDetail", "Contributor", "DataRequirement",
    "Expression", "ParameterDefinition", "RelatedArtifact", "TriggerDefinition", "UsageContext",
    "Dosage", "Meta", "Extension", "Narrative", "MoneyQuantity", "SimpleQuantity", "Element",
    "BackboneElement", "MarketingStatus", "Population", "ProdCharacteristic", "ProductShelfLife",
    "SubstanceAmount"))
# the types a choice element may take in R4 (the "open" type list plus the few resource-specific ones)
CHOICE_TYPES = tuple(sorted((PRIMITIVES - {"xhtml"}) | COMPLEX - {"Element", "BackboneElement", "Narrative",
                                                                      "MoneyQuantity", "SimpleQuantity",
                                                                      "Extension"}))
RESOURCE_TYPES_ROOT = frozenset(("Resource", "DomainResource"))
CORE = "http://hl7.org/fhir/StructureDefinition/"
SYSTEM_TYPE = "http://hl7.org/fhirpath/System."
STRING_TYPES = frozenset(("string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid",
                          "base64Binary", "xhtml"))


def is_primitive(code: str) -> bool:
    return code in PRIMITIVES or code.startswith(SYSTEM_TYPE)


def json_suffix(code: str) -> str:
    return code[0].upper() + code[1:]


def core_url(code: str) -> str:
    return code if "/" in code else CORE + code


def type_of_canonical(canonical: str) -> str | None:
    """The type a core StructureDefinition canonical names ('.../StructureDefinition/Patient' -> 'Patient');
    None for any other canonical (a profile, whose type must be read from its definition)."""
    url = canonical.partition("|")[0]
    if url.startswith(CORE):
        name = url[len(CORE):]
        if re.fullmatch(r"[A-Z][A-Za-z]+", name):
            return name
    return None
