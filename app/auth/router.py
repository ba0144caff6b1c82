"""Routes of the auth domain."""

from app.core.routing import APIRouter

router = APIRouter(tags=["auth"])
