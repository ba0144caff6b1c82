"""Routes of the audit domain."""

from app.core.routing import APIRouter

router = APIRouter(tags=["audit"])
