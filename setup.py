"""Packaging beyond setup.cfg: the definitions kept in the repository's top-level profiles/ and
terminology/ ship inside the package as fhirserver.profiles and fhirserver.terminology_files (package
data), so a non-editable install has them too."""
from setuptools import find_packages, setup

_DATA = ["*.json", "*.json.gz", "*.md", "**/*.json", "**/*.json.gz", "**/*.md"]

setup(packages=find_packages(include=["fhirserver*"]) + ["fhirserver.profiles", "fhirserver.terminology_files"],
      package_dir={"fhirserver.profiles": "profiles", "fhirserver.terminology_files": "terminology"},
      package_data={"fhirserver.profiles": _DATA, "fhirserver.terminology_files": _DATA})
