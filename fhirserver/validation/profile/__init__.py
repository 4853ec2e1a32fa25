"""Profile validation against StructureDefinitions (issue 20)."""
