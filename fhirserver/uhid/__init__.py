"""The Unique Health ID (UHID): Med-Port's national patient identifier.

Fourteen digits shown as NN-NNNN-NNNN-NNNN (the shape of India's ABHA number), the last
a Verhoeff check digit over the first thirteen, drawn from a cryptographic random source.
It is a Patient.identifier under a configurable system URI (docs/uhid.md): issued on
registration or on any Patient create, checked, unique, permanent and searchable.
"""
