"""The AccessService servicer (transport only: proto in, domain call, proto out).
The auth interceptor has authorized each call by ``permissions.RULES``
before it gets here."""

from __future__ import annotations

from grpc import aio

from framevault.auth.access import Access
from framevault.auth.principals import current_caller
from framevault.v1 import access_pb2, access_pb2_grpc


class AccessServicer(access_pb2_grpc.AccessServiceServicer):
    def __init__(self, access: Access):
        self.access = access

    async def GetCaller(self, request: access_pb2.GetCallerRequest, context: aio.ServicerContext
                        ) -> access_pb2.Caller:
        return await self.access.describe(current_caller())

    async def CreateApiKey(self, request: access_pb2.CreateApiKeyRequest, context: aio.ServicerContext
                           ) -> access_pb2.CreateApiKeyResponse:
        return await self.access.create_api_key(current_caller(), request)

    async def ListApiKeys(self, request: access_pb2.ListApiKeysRequest, context: aio.ServicerContext
                          ) -> access_pb2.ListApiKeysResponse:
        return await self.access.list_api_keys(request)

    async def RevokeApiKey(self, request: access_pb2.RevokeApiKeyRequest, context: aio.ServicerContext
                           ) -> access_pb2.ApiKey:
        return await self.access.revoke_api_key(request)

    async def GrantRole(self, request: access_pb2.GrantRoleRequest, context: aio.ServicerContext
                        ) -> access_pb2.RoleBinding:
        return await self.access.grant_role(current_caller(), request)

    async def RevokeRole(self, request: access_pb2.RevokeRoleRequest, context: aio.ServicerContext
                         ) -> access_pb2.RevokeRoleResponse:
        return await self.access.revoke_role(current_caller(), request)

    async def ListRoles(self, request: access_pb2.ListRolesRequest, context: aio.ServicerContext
                        ) -> access_pb2.ListRolesResponse:
        return await self.access.list_roles(current_caller(), request)

    async def AuthenticateCaller(self, request: access_pb2.AuthenticateCallerRequest, context: aio.ServicerContext
                                 ) -> access_pb2.Caller:
        return await self.access.authenticate_token(request.token)

    async def CheckBlobAccess(self, request: access_pb2.CheckBlobAccessRequest, context: aio.ServicerContext
                              ) -> access_pb2.CheckBlobAccessResponse:
        return await self.access.check_blob_access(request)
