"""One module per FHIR RESTful interaction, named as in http://hl7.org/fhir/R4/http.html.

Interactions take a ServerContext and plain values and return a Result; they
know nothing of Flask. Errors are raised as fhirserver.errors types.
"""
