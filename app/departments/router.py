"""Routes of the departments domain."""

from app.core.routing import APIRouter

router = APIRouter(tags=["departments"])
