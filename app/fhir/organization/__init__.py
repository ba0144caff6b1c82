"""FHIR Organization: its router and its mapping from rows."""
