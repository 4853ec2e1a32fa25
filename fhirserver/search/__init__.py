"""FHIR search: parameter registry, parsing into a backend-neutral query tree,
and index extraction at write time (http://hl7.org/fhir/R4/search.html)."""
