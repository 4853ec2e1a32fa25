"""FHIR Bulk Data Access 3.0 export (https://hl7.org/fhir/uv/bulkdata/export.html).

request.py reads a kick-off into an ExportRequest; plan.py turns it and the client's access into one
query per resource type; jobs.py keeps jobs in the store; run.py writes a job's NDJSON files;
worker.py leases queued jobs (`medport worker`); routes.py is the HTTP side (kick-off, status,
cancel, files). Design and limits: docs/bulk-export.md.
"""
