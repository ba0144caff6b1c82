"""Routes of the records domain."""

from app.core.routing import APIRouter

router = APIRouter(tags=["records"])
