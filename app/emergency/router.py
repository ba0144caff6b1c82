"""Routes of the emergency domain."""

from app.core.routing import APIRouter

router = APIRouter(tags=["emergency"])
