"""FHIR Patient: its router and its mapping from rows."""
