"""Routes of the users domain."""

from app.core.routing import APIRouter

router = APIRouter(tags=["users"])
