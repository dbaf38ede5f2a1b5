"""API keys, for admins: create (the key is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter

from genfoundry.api.deps import AdminDep, ServicesDep
from genfoundry.presenters.keys import key_created, key_public
from genfoundry.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ListPublic
from genfoundry.services import keys as keys_service

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("")
def read_keys(services: ServicesDep, _admin: AdminDep) -> ListPublic[ApiKeyPublic]:
    rows = keys_service.list_keys(sessions=services.sessions)
    return ListPublic(data=[key_public(key, user) for key, user in rows])


@router.post("", status_code=201)
def create_key(body: ApiKeyCreate, services: ServicesDep, _admin: AdminDep) -> ApiKeyCreated:
    """A key for a new user named `name` (or for `user_id`); the key itself is in this answer only."""
    new = keys_service.create_key(sessions=services.sessions, name=body.name, is_admin=body.admin, user_id=body.user_id)
    return key_created(new.record, new.user, new.key)


@router.post("/{key_id}/revoke")
def revoke_key(key_id: str, services: ServicesDep, _admin: AdminDep) -> ApiKeyPublic:
    return key_public(*keys_service.revoke_key(sessions=services.sessions, key_id=key_id))
