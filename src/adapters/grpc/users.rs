//! `polyport.v1.UserService`: registration, profiles and administration, as canonical
//! operations.

use tonic::{Request, Response, Status};

use super::call::{Call, unexpected};
use super::{Grpc, convert, pb};
use crate::domain::user::{RegisterUser, UserPatch};
use crate::platform::operations::{Operation, Outcome, Paging};

/// The wire's `limit` (0: the default) and opaque `cursor` ("" : the first page).
pub(super) fn paging(limit: i32, cursor: &str) -> Paging {
    Paging { limit: (limit != 0).then_some(i64::from(limit)), cursor: (!cursor.is_empty()).then(|| cursor.to_string()) }
}

async fn user(call: &Call, op: Operation) -> Result<Response<pb::User>, Status> {
    match call.run(op).await? {
        (Outcome::User(u), replayed) => Ok(call.respond(convert::user(u), replayed)),
        (Outcome::UserView(v), replayed) => Ok(call.respond(convert::user_view(v), replayed)),
        _ => Err(unexpected(call)),
    }
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for Grpc {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::User>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        user(&call, Operation::Register(RegisterUser { email: r.email, name: r.name, password: r.password })).await
    }

    async fn get_me(&self, req: Request<pb::GetMeRequest>) -> Result<Response<pb::User>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        user(&call, Operation::Me).await
    }

    async fn get_user(&self, req: Request<pb::GetUserRequest>) -> Result<Response<pb::User>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        user(&call, Operation::GetUser { id: req.into_inner().id }).await
    }

    async fn list_users(&self, req: Request<pb::ListUsersRequest>) -> Result<Response<pb::ListUsersResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.get_ref();
        let (Outcome::Users(page), _) = call.run(Operation::ListUsers(paging(r.limit, &r.cursor))).await? else {
            return Err(unexpected(&call));
        };
        let has_more = page.has_more();
        Ok(call.reply(pb::ListUsersResponse {
            data: page.items.into_iter().map(convert::user_view).collect(),
            has_more,
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn update_user(&self, req: Request<pb::UpdateUserRequest>) -> Result<Response<pb::User>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let patch = UserPatch { email: r.email, name: r.name, role: r.role };
        user(&call, Operation::UpdateUser { id: r.id, patch, expected_version: r.expected_version }).await
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let (_, replayed) = call.run(Operation::DeleteUser { id: r.id, expected_version: r.expected_version }).await?;
        Ok(call.respond(pb::DeleteUserResponse { deleted: true }, replayed))
    }
}
