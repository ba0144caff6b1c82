"""The first administrator, from FIRST_ADMIN_USERNAME / FIRST_ADMIN_PASSWORD."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.security import hash_password
from app.users.models import Role, User, casefold_key


async def create_admin(
    sessionmaker: async_sessionmaker[AsyncSession],
    username: str,
    password: str,
    email: str | None = None,
) -> bool:
    """Create the admin unless the username exists (its password is never overwritten).

    Safe when several workers start at once: the unique username decides, the others
    see the conflict and carry on. Returns whether this call created the user.
    """
    async with sessionmaker() as session:
        existing = await session.scalar(
            select(User.id).where(User.username_key == casefold_key(username))
        )
        if existing is not None:
            return False
        session.add(
            User(
                username=username,
                email=email or f"{username}@localhost",
                full_name="Administrator",
                password_hash=await hash_password(password),
                role=Role.ADMIN,
            )
        )
        try:
            await session.commit()
        except IntegrityError:
            return False
    return True
