"""SMART on FHIR authorization (App Launch 2.2, Backend Services): scopes first; the
authorization server and enforcement follow in the SMART issue."""
