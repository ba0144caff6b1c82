"""FHIR Practitioner and PractitionerRole: their router and its mapping from rows."""
