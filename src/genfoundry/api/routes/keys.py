"""API keys, for admins: create (the key is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import AdminDep, ServicesDep
from genfoundry.db.tables import ApiKey, User
from genfoundry.repo import users as users_repo
from genfoundry.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ListPublic

router = APIRouter(prefix="/v1/keys", tags=["keys"])


def key_public(key: ApiKey, user: User) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        user_id=user.id,
        admin=user.is_admin,
        created=int(key.created_at.timestamp()),
        last_used=int(key.last_used_at.timestamp()) if key.last_used_at else None,
        revoked=int(key.revoked_at.timestamp()) if key.revoked_at else None,
    )


@router.get("")
async def read_keys(services: ServicesDep, _admin: AdminDep) -> ListPublic[ApiKeyPublic]:
    def load() -> ListPublic[ApiKeyPublic]:
        with services.sessions() as session:
            return ListPublic(data=[key_public(key, user) for key, user in users_repo.list_keys(session=session)])

    return await run_in_threadpool(load)


@router.post("", status_code=201)
async def create_key(body: ApiKeyCreate, services: ServicesDep, _admin: AdminDep) -> ApiKeyCreated:
    """A key for a new user named `name` (or for `user_id`); the key itself is in this answer only."""

    def create() -> ApiKeyCreated:
        with services.sessions() as session:
            new = users_repo.create_key(session=session, name=body.name, is_admin=body.admin, user_id=body.user_id)
            session.commit()
            user = session.get(User, new.record.user_id)
            assert user is not None
            return ApiKeyCreated(**key_public(new.record, user).model_dump(), key=new.key)

    return await run_in_threadpool(create)


@router.post("/{key_id}/revoke")
async def revoke_key(key_id: str, services: ServicesDep, _admin: AdminDep) -> ApiKeyPublic:
    def revoke() -> ApiKeyPublic:
        with services.sessions() as session:
            key = users_repo.revoke_key(session=session, key_id=key_id)
            session.commit()
            user = session.get(User, key.user_id)
            assert user is not None
            return key_public(key, user)

    return await run_in_threadpool(revoke)
