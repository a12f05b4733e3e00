//! `polyport.v1.UserService`: registration, profiles and administration over the core.

use prost::Message;
use tonic::{Request, Response, Status};

use super::call::{Call, idempotency_key};
use super::{Grpc, convert, pb};
use crate::domain::page::PageRequest;
use crate::domain::user::{RegisterUser, UserPatch};
use crate::platform::cursor::USERS_CONTEXT;

impl Grpc {
    /// A page request from the wire's `limit` (0: default) and opaque `cursor`.
    pub(super) fn page(&self, call: &Call, context: &str, limit: i32, cursor: &str) -> Result<PageRequest, Status> {
        let after = match cursor {
            "" => None,
            c => Some(self.shared.cursors.decode(context, c).map_err(|e| call.fail(&e))?),
        };
        Ok(PageRequest::new((limit != 0).then_some(i64::from(limit)), after))
    }
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for Grpc {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::User>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let key = idempotency_key(&req);
        let r = req.into_inner();
        call.once("Register", key, &r.encode_to_vec(), || async {
            let input = RegisterUser { email: r.email.clone(), name: r.name.clone(), password: r.password.clone() };
            Ok(convert::user(self.shared.core.users.register(input).await?))
        })
        .await
    }

    async fn get_me(&self, req: Request<pb::GetMeRequest>) -> Result<Response<pb::User>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let me = self.shared.core.users.me(call.actor()).await.map_err(|e| call.fail(&e))?;
        Ok(call.reply(convert::user(me)))
    }

    async fn get_user(&self, req: Request<pb::GetUserRequest>) -> Result<Response<pb::User>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let view = self.shared.core.users.get(call.actor(), &req.get_ref().id).await.map_err(|e| call.fail(&e))?;
        Ok(call.reply(convert::user_view(view)))
    }

    async fn list_users(&self, req: Request<pb::ListUsersRequest>) -> Result<Response<pb::ListUsersResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.get_ref();
        let page = self.page(&call, USERS_CONTEXT, r.limit, &r.cursor)?;
        let found = self.shared.core.users.list(call.actor(), &page).await.map_err(|e| call.fail(&e))?;
        let next = found.next_after.as_deref().map(|a| self.shared.cursors.encode(USERS_CONTEXT, a));
        Ok(call.reply(pb::ListUsersResponse {
            data: found.items.into_iter().map(convert::user_view).collect(),
            has_more: next.is_some(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn update_user(&self, req: Request<pb::UpdateUserRequest>) -> Result<Response<pb::User>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let key = idempotency_key(&req);
        let r = req.into_inner();
        call.once("UpdateUser", key, &r.encode_to_vec(), || async {
            let patch = UserPatch { email: r.email.clone(), name: r.name.clone(), role: r.role.clone() };
            Ok(convert::user(self.shared.core.users.update(call.actor(), &r.id, patch, r.expected_version).await?))
        })
        .await
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.get_ref();
        self.shared.core.users.delete(call.actor(), &r.id, r.expected_version).await.map_err(|e| call.fail(&e))?;
        Ok(call.reply(pb::DeleteUserResponse { deleted: true }))
    }
}
