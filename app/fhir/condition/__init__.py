"""FHIR Condition: its router and its mapping from rows."""
