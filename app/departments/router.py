"""Routes of departments, their doctors and their patients."""

from typing import Annotated, Any

from fastapi import Path, Request, Response, status

from app.auth.dependencies import AdminWrite, protected_router, reader_of
from app.core.pagination import PageDep, page_response
from app.core.responses import MAX_ID, errors, json_response
from app.departments import service
from app.departments.schemas import DepartmentCreate, DepartmentPublic, DepartmentUpdate
from app.users.schemas import DoctorPublic, PatientPublic

router = protected_router("departments")

DepartmentId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get(
    "/department/",
    summary="List departments",
    description="Departments in id order. Any authenticated user.",
    response_model=list[DepartmentPublic],
    responses=errors(401),
)
async def list_departments(page: PageDep, request: Request) -> Response:
    departments, more = await service.list_departments(reader_of(request), page)
    return page_response(departments, more, request)


@router.get(
    "/department/{department_id}",
    summary="Get a department",
    description="One department. Any authenticated user.",
    response_model=DepartmentPublic,
    responses=errors(401, 404),
)
async def get_department(department_id: DepartmentId, request: Request) -> Response:
    return json_response(await service.get_department(reader_of(request), department_id))


@router.post(
    "/department/",
    status_code=status.HTTP_201_CREATED,
    summary="Create a department",
    description=(
        "The name is unique regardless of letter case, compatibility forms (fullwidth "
        "letters) and surrounding spaces (409 when taken); it is stored as sent. Admins only."
    ),
    response_model=DepartmentPublic,
    responses=errors(401, 403, 409),
)
async def create_department(write: AdminWrite, data: DepartmentCreate) -> Any:
    return await service.create_department(write, data)


@router.patch(
    "/department/{department_id}",
    summary="Update a department",
    description="Only the fields sent change; a name taken by another department is a 409. "
    "Admins only.",
    response_model=DepartmentPublic,
    responses=errors(401, 403, 404, 409),
)
async def update_department(
    write: AdminWrite, department_id: DepartmentId, changes: DepartmentUpdate
) -> Any:
    return await service.update_department(write, department_id, changes)


@router.delete(
    "/department/{department_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a department",
    description="Only an empty department: 409 while doctors or records belong to it. Admins only.",
    response_class=Response,
    responses=errors(401, 403, 404, 409),
)
async def delete_department(write: AdminWrite, department_id: DepartmentId) -> Response:
    await service.delete_department(write, department_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/department/{department_id}/doctors",
    summary="List a department's doctors",
    description="Doctors of the department, in id order. Admins and doctors.",
    response_model=list[DoctorPublic],
    responses=errors(401, 403, 404),
)
async def list_department_doctors(
    department_id: DepartmentId, page: PageDep, request: Request
) -> Response:
    doctors, more = await service.list_doctors(reader_of(request), department_id, page)
    return page_response(doctors, more, request)


@router.get(
    "/department/{department_id}/patients",
    summary="List a department's patients",
    description="Patients with at least one record in the department, in id order. Every "
    "doctor, for any department (a consult needs to see whom another ward treats). Each "
    "page is audited as one event naming its patients.",
    response_model=list[PatientPublic],
    responses=errors(401, 403, 404),
)
async def list_department_patients(
    department_id: DepartmentId, page: PageDep, request: Request
) -> Response:
    patients, more = await service.list_patients(reader_of(request), department_id, page)
    return page_response(patients, more, request)
