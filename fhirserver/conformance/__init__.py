"""The definitions this server knows (conformance.html): StructureDefinitions, ValueSets, CodeSystems,
ConceptMaps, SearchParameters, NamingSystems and ImplementationGuides.

Two sources, one view: the catalogue shipped with the server (catalogue.py: profiles/definitions/ and
terminology/, read-only) and the ones held in the store (written by administrators or installed with
`medport ig install`), which win over shipped ones of the same canonical URL (definitions.py)."""
from __future__ import annotations

from .definitions import CONFORMANCE_TYPES, Definitions, definitions

__all__ = ["CONFORMANCE_TYPES", "Definitions", "definitions"]
