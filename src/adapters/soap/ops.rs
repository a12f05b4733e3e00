//! SOAP operation handlers: request element -> domain request -> one core call -> response
//! element. Authorization, validation and events live in the core.

use super::envelope::Version;
use super::input::Input;
use super::schema::{OpId, Operation};
use super::writer::{self, XmlOut, response};
use crate::adapters::Shared;
use crate::domain::error::DomainResult;
use crate::domain::page::{Page, PageRequest};
use crate::domain::policy::Actor;
use crate::domain::post::{NewPost, Post, PostFilter, PostPatch};
use crate::domain::service::{ClientInfo, UserView};
use crate::domain::user::{RegisterUser, UserPatch};

/// One call: who asks, in which SOAP version, for which operation, with which input.
pub struct Call<'a> {
    pub shared: &'a Shared,
    pub actor: &'a Actor,
    pub client: &'a ClientInfo,
    pub version: Version,
    pub op: &'static Operation,
    pub input: Input<'a>,
}

/// Runs the operation; the response envelope bytes on success.
pub async fn dispatch(c: Call<'_>) -> DomainResult<Vec<u8>> {
    let (s, a, i) = (c.shared, c.actor, &c.input);
    let one_post = |post: Post| response(c.version, c.op, |out| writer::post(out, "post", &post));
    match c.op.id {
        OpId::Login => {
            let pair = s.core.auth.login(&i.text("email"), &i.text("password"), c.client).await?;
            Ok(response(c.version, c.op, |out| {
                out.leaf("accessToken", &pair.access_token).leaf("tokenType", "Bearer");
                out.leaf("expiresIn", &pair.expires_in.to_string()).leaf("refreshToken", &pair.refresh_token);
            }))
        }
        OpId::Register => {
            let input = RegisterUser { email: i.text("email"), name: i.text("name"), password: i.text("password") };
            let user = s.core.users.register(input).await?;
            Ok(response(c.version, c.op, |out| writer::user(out, "user", &user)))
        }
        OpId::GetUser => {
            let view = s.core.users.get(a, &i.id("id")?).await?;
            Ok(response(c.version, c.op, |out| writer::user_view(out, "user", &view)))
        }
        OpId::ListUsers => {
            let req = page_request(s, USERS, i)?;
            let page = s.core.users.list(a, &req).await?;
            Ok(list(c.version, c.op, s, USERS, page, |out, u: &UserView| writer::user_view(out, "user", u)))
        }
        OpId::UpdateUser => {
            let patch = UserPatch { email: i.opt("email"), name: i.opt("name"), role: i.opt("role") };
            let user = s.core.users.update(a, &i.id("id")?, patch, i.int("expectedVersion")).await?;
            Ok(response(c.version, c.op, |out| writer::user(out, "user", &user)))
        }
        OpId::DeleteUser => {
            s.core.users.delete(a, &i.id("id")?, i.int("expectedVersion")).await?;
            Ok(response(c.version, c.op, |_| {}))
        }
        OpId::GetPost => Ok(one_post(s.core.posts.get(a, &i.id("id")?).await?)),
        OpId::ListPosts => {
            let filter = PostFilter::parse(i.opt("authorId"), i.opt("status"), i.opt("tag"))?;
            let context = posts_context(&filter);
            let req = page_request(s, &context, i)?;
            let page = s.core.posts.list(a, &filter, &req).await?;
            Ok(list(c.version, c.op, s, &context, page, |out, p: &Post| writer::post(out, "post", p)))
        }
        OpId::CreatePost => {
            let input =
                NewPost { title: i.text("title"), body: i.text("body"), tags: i.tags("tags").unwrap_or_default() };
            Ok(one_post(s.core.posts.create(a, input).await?))
        }
        OpId::UpdatePost => {
            let patch = PostPatch { title: i.opt("title"), body: i.opt("body"), tags: i.tags("tags") };
            Ok(one_post(s.core.posts.update(a, &i.id("id")?, patch, i.int("expectedVersion")).await?))
        }
        OpId::PublishPost => Ok(one_post(s.core.posts.publish(a, &i.id("id")?, i.int("expectedVersion")).await?)),
        OpId::UnpublishPost => Ok(one_post(s.core.posts.unpublish(a, &i.id("id")?, i.int("expectedVersion")).await?)),
        OpId::DeletePost => {
            s.core.posts.delete(a, &i.id("id")?, i.int("expectedVersion")).await?;
            Ok(response(c.version, c.op, |_| {}))
        }
    }
}

use crate::platform::cursor::{USERS_CONTEXT as USERS, posts_context};

fn page_request(s: &Shared, context: &str, i: &Input<'_>) -> DomainResult<PageRequest> {
    let after = match i.opt("cursor").filter(|c| !c.is_empty()) {
        Some(cursor) => Some(s.cursors.decode(context, cursor.trim())?),
        None => None,
    };
    Ok(PageRequest::new(i.int("limit"), after))
}

/// `<item/>* <nextCursor/>? <hasMore/>` with the opaque cursor of the page.
fn list<T>(
    version: Version,
    op: &Operation,
    s: &Shared,
    context: &str,
    page: Page<T>,
    item: impl Fn(&mut XmlOut, &T),
) -> Vec<u8> {
    let next = page.next_after.as_deref().map(|after| s.cursors.encode(context, after));
    response(version, op, |out| {
        for it in &page.items {
            item(out, it);
        }
        if let Some(cursor) = &next {
            out.leaf("nextCursor", cursor);
        }
        out.leaf("hasMore", if next.is_some() { "true" } else { "false" });
    })
}
