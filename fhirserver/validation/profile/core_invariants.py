"""Plain-Python forms of the invariants checked on every element or every resource.

Each answers exactly what its official R4 expression (keyed below with its key) answers under
invariants.py's reading, at a fraction of fhirpathpy's cost: ele-1 sits on every element, ext-1 on every
extension, dom-2 ... dom-6 on every DomainResource, txt-1/txt-2 on every narrative, ref-1 and qty-3 on every
Reference and Quantity, obs-6/obs-7 and the vital-signs vs-2/vs-3 on every (US Core) vital sign; sdf-8 and
sdf-8a because fhirpathpy's reading of them is quadratic in a StructureDefinition's elements.
Sources: http://hl7.org/fhir/R4/element.html (ele-1), extensibility.html (ext-1), domainresource.html
(dom-*), narrative.html (txt-*), references.html (ref-1), datatypes.html#Quantity (qty-3),
observation.html (obs-6, obs-7), observation-vitalsigns.html (vs-1, vs-2, vs-3), structuredefinition.html
(sdf-8, sdf-8a).
tests/validation/profile/test_invariants.py proves each equal to fhirpathpy on every element of the
official examples (sdf-8/sdf-8a: test_hostile.py, on the shipped definitions). Where a native form meets
data outside its fast path it asks fhirpathpy.
"""
from __future__ import annotations

import functools
import re

import fhirpathpy

from . import narrative
from .invariants import _OPTIONS, MODEL, fhirpath_invariant

ELE_1 = "hasValue() or (children().count() > id.count())"
EXT_1 = "extension.exists() != value.exists()"
DOM_2 = "contained.contained.empty()"
DOM_3 = ("contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | "
         "%resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = '#')"
         ".exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = '#')"
         ".exists()).not()).trace('unmatched', id).empty()")
# R4's dom-3 applies as() to collections, an error in FHIRPath (fhirpathpy raises); R5 wrote ofType() for it,
# which is how the HL7 Java engine reads as() on a collection. Used when a resource has contained resources.
DOM_3_OFTYPE = DOM_3.replace(".as(", ".ofType(").replace("where(as(", "where(ofType(")
DOM_4 = "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()"
DOM_5 = "contained.meta.security.empty()"
DOM_6 = "text.`div`.exists()"
HTML = "htmlChecks()"
REF_1 = ("reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
         "%rootResource.contained.id.trace('ids'))")
QTY_3 = "code.empty() or system.exists()"
OBS_6 = "dataAbsentReason.empty() or value.empty()"
OBS_7 = "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()"
VS_2 = "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())"
VS_3 = "value.exists() or dataAbsentReason.exists()"
VS_1 = "($this as dateTime).toString().length() >= 8"


def _choice_keys(path: str) -> frozenset[str]:
    """The JSON names of a choice element, with their `_` forms (R4 model, as fhirpathpy navigates)."""
    names = {path.rsplit(".", 1)[1] + t for t in MODEL["choiceTypePaths"][path]}
    return frozenset(names | {"_" + n for n in names})


_EXTENSION_VALUE = _choice_keys("Extension.value")
_OBSERVATION_VALUE = _choice_keys("Observation.value")
_COMPONENT_VALUE = _choice_keys("Observation.component.value")


def _has(focus: dict, name: str) -> bool:
    return focus.get(name) is not None or focus.get("_" + name) is not None


def _any_key(focus: dict, keys: frozenset[str]) -> bool:
    return any(k in keys for k in focus)


def ele_1(focus, resource, base=None, root=None):
    """A child other than id; a primitive's `_name` (extensions, no value) is such a child. fhirpathpy's
    children() skips `_name` members, so it alone fails an element whose only child is one of those."""
    if isinstance(focus, dict):
        return any(k != "id" and k != "_id" for k in focus)
    return focus is not None and not isinstance(focus, list)


def ext_1(focus, resource, base=None, root=None):
    if not isinstance(focus, dict):
        return fhirpath_invariant(EXT_1)(focus, resource, base, root)
    return bool(focus.get("extension")) != _any_key(focus, _EXTENSION_VALUE)


def _contained(focus) -> list:
    found = focus.get("contained") if isinstance(focus, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def dom_2(focus, resource, base=None, root=None):
    return not any(c.get("contained") for c in _contained(focus))


# dom-3 in two linear halves: fhirpathpy's own reading of DOM_3_OFTYPE walks %resource.descendants() once per
# contained resource (quadratic: 1,000 contained resources took minutes). The values that may refer to a
# contained resource are collected once; whether a contained resource refers to its container ('#') is asked
# of that resource alone.
_DOM_3_TARGETS = ("descendants().reference | descendants().ofType(canonical) | descendants().ofType(uri) | "
                  "descendants().ofType(url)")
_DOM_3_SELF = ("descendants().where(reference = '#').exists() or descendants().where(ofType(canonical) = '#')"
               ".exists() or descendants().where(ofType(canonical) = '#').exists()")


@functools.cache
def _compiled(expression: str):
    return fhirpathpy.compile(expression, MODEL, _OPTIONS)


def dom_3(focus, resource, base=None, root=None):
    contained = _contained(focus)
    if not contained:
        return True
    if focus is not resource or len(contained) != len(focus["contained"]):
        return fhirpath_invariant(DOM_3_OFTYPE)(focus, resource, base, root)
    env = {"resource": resource, "rootResource": resource if root is None else root}
    try:
        targets = {v for v in _compiled(_DOM_3_TARGETS)(focus, env) if isinstance(v, str)}
        for c in contained:
            cid = c.get("id")
            if cid is None or (isinstance(cid, str) and "#" + cid in targets):
                continue        # no id: '#' + {} is empty, so the where() never selects it
            if not isinstance(cid, str):
                return fhirpath_invariant(DOM_3_OFTYPE)(focus, resource, base, root)
            if _compiled(_DOM_3_SELF)(c, {"resource": c, "rootResource": env["rootResource"]}) != [True]:
                return False
    except Exception:           # the engine failed on this data: not evaluated (invariants.py)
        return None
    return True


def _metas(focus) -> list[dict]:
    return [c["meta"] for c in _contained(focus) if isinstance(c.get("meta"), dict)]


def dom_4(focus, resource, base=None, root=None):
    return not any(_has(m, "versionId") or _has(m, "lastUpdated") for m in _metas(focus))


def dom_5(focus, resource, base=None, root=None):
    return not any(m.get("security") for m in _metas(focus))


def dom_6(focus, resource, base=None, root=None):
    text = focus.get("text") if isinstance(focus, dict) else None
    return isinstance(text, dict) and _has(text, "div")


def txt_1(focus, resource, base=None, root=None):
    return isinstance(focus, str) and narrative.allowed(focus)


def txt_2(focus, resource, base=None, root=None):
    return isinstance(focus, str) and narrative.has_content(focus)


def ref_1(focus, resource, base=None, root=None):
    if isinstance(focus, dict) and "reference" not in focus and "_reference" not in focus:
        return True
    reference = focus.get("reference") if isinstance(focus, dict) else None
    if not isinstance(reference, str):
        return fhirpath_invariant(REF_1)(focus, resource, base, root)
    if not reference.startswith("#"):
        return True
    return reference[1:] in {c.get("id") for c in _contained(resource if root is None else root)}


def qty_3(focus, resource, base=None, root=None):
    if not isinstance(focus, dict):
        return fhirpath_invariant(QTY_3)(focus, resource, base, root)
    return not _has(focus, "code") or _has(focus, "system")


def obs_6(focus, resource, base=None, root=None):
    if not isinstance(focus, dict):
        return fhirpath_invariant(OBS_6)(focus, resource, base, root)
    return not (_has(focus, "dataAbsentReason") and _any_key(focus, _OBSERVATION_VALUE))


def _codings(concept) -> list:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return codings if isinstance(codings, list) else []


def obs_7(focus, resource, base=None, root=None):
    if not isinstance(focus, dict) or not isinstance(resource, dict):
        return fhirpath_invariant(OBS_7)(focus, resource, base, root)
    if not _any_key(focus, _OBSERVATION_VALUE):
        return True
    codes = _codings(resource.get("code"))
    components = focus.get("component") if isinstance(focus.get("component"), list) else []
    return not any(c in codes for comp in components if isinstance(comp, dict) for c in _codings(comp.get("code")))


def vs_2(focus, resource, base=None, root=None):
    if not isinstance(focus, dict):
        return fhirpath_invariant(VS_2)(focus, resource, base, root)
    if focus.get("component") or focus.get("hasMember"):
        return True
    return _has(focus, "dataAbsentReason") or _any_key(focus, _OBSERVATION_VALUE)


def vs_3(focus, resource, base=None, root=None):
    if not isinstance(focus, dict):
        return fhirpath_invariant(VS_3)(focus, resource, base, root)
    return _any_key(focus, _COMPONENT_VALUE) or _has(focus, "dataAbsentReason")


def vs_1(focus, resource, base=None, root=None):
    """effective[x]: a dateTime is precise to the day; other types (Period ...) make `as dateTime` empty.
    A string focus without a base is a dateTime or an instant (always longer than 8)."""
    if base not in (None, "dateTime", "Observation.effective", "Observation.effective[x]"):
        return True
    if not isinstance(focus, str):
        return fhirpath_invariant(VS_1)(focus, resource, base, root)
    return len(focus) >= 8


SDF_8 = ("(%resource.kind = 'logical' or element.first().path = %resource.type) and element.tail().all(path."
         "startsWith(%resource.snapshot.element.first().path&'.'))")
SDF_8A = ("(%resource.kind = 'logical' or element.first().path.startsWith(%resource.type)) and (element.tail()."
          "empty() or element.tail().all(path.startsWith(%resource.differential.element.first().path."
          "replaceMatches('\\\\..*','')&'.')))")


def _paths(focus, resource) -> tuple[list[str], str, str] | None:
    """The element paths of a snapshot or differential, the kind and the type, when all are plain strings
    and the focus is the resource's own (else None: fhirpathpy answers)."""
    if not isinstance(focus, dict) or not isinstance(resource, dict):
        return None
    elements, kind, rtype = focus.get("element"), resource.get("kind"), resource.get("type")
    if not isinstance(elements, list) or not elements or not isinstance(kind, str) or not isinstance(rtype, str):
        return None
    paths = [e.get("path") if isinstance(e, dict) else None for e in elements]
    if not all(isinstance(p, str) and "\n" not in p for p in paths):
        return None
    return paths, kind, rtype


def sdf_8(focus, resource, base=None, root=None):
    """Quadratic as fhirpathpy reads it (%resource navigated once per element): 4,000 elements took 44 s."""
    found = _paths(focus, resource)
    if found is None or focus is not (resource.get("snapshot")):
        return fhirpath_invariant(SDF_8)(focus, resource, base, root)
    paths, kind, rtype = found
    prefix = paths[0] + "."
    return (kind == "logical" or paths[0] == rtype) and all(p.startswith(prefix) for p in paths[1:])


def sdf_8a(focus, resource, base=None, root=None):
    found = _paths(focus, resource)
    if found is None or focus is not (resource.get("differential")):
        return fhirpath_invariant(SDF_8A)(focus, resource, base, root)
    paths, kind, rtype = found
    prefix = re.sub(r"\..*", "", paths[0]) + "."
    return (kind == "logical" or paths[0].startswith(rtype)) and all(p.startswith(prefix) for p in paths[1:])


NATIVE = {("ele-1", ELE_1): ele_1, ("ext-1", EXT_1): ext_1, ("dom-2", DOM_2): dom_2, ("dom-3", DOM_3): dom_3,
          ("dom-4", DOM_4): dom_4, ("dom-5", DOM_5): dom_5, ("dom-6", DOM_6): dom_6,
          ("txt-1", HTML): txt_1, ("txt-2", HTML): txt_2, ("ref-1", REF_1): ref_1, ("qty-3", QTY_3): qty_3,
          ("obs-6", OBS_6): obs_6, ("obs-7", OBS_7): obs_7, ("vs-2", VS_2): vs_2, ("vs-3", VS_3): vs_3,
          ("vs-1", VS_1): vs_1, ("sdf-8", SDF_8): sdf_8, ("sdf-8a", SDF_8A): sdf_8a}
