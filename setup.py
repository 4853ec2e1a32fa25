"""Packaging beyond setup.cfg: the definitions kept in the repository's top-level profiles/ ship inside
the package as fhirserver.profiles (package data), so a non-editable install has them too."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["fhirserver*"]) + ["fhirserver.profiles", "fhirserver.profiles.operations",
                                                         "fhirserver.profiles.immunization"],
      package_dir={"fhirserver.profiles": "profiles"},
      package_data={"fhirserver.profiles": ["*.json", "*.md"], "fhirserver.profiles.operations": ["*.json"],
                    "fhirserver.profiles.immunization": ["*.json", "*.md"]})
