"""The URIs this service names its own identifier systems and extensions by, from one
configurable base (`FHIR_SYSTEM_BASE`): the same on every host that serves one hospital."""

from dataclasses import dataclass, field

from fastapi import Request

from app.core.config import Settings


@dataclass(frozen=True, slots=True)
class Systems:
    base: str
    username: str
    license_number: str
    # The identifier systems that search parameters name (app.fhir.search.token).
    by_name: dict[str, str] = field(default_factory=dict)

    def extension(self, name: str) -> str:
        return f"{self.base}/fhir/StructureDefinition/{name}"


def of_settings(settings: Settings) -> Systems:
    base = settings.fhir_system_base.rstrip("/")
    username = f"{base}/identifier/username"
    license_number = f"{base}/identifier/license-number"
    names = {"username": username, "license_number": license_number}
    return Systems(base, username, license_number, names)


def of_request(request: Request) -> Systems:
    systems: Systems = request.app.state.fhir_systems
    return systems
