//! The SOAP vocabulary as data: every type, element and operation. The request reader, the
//! response writer and the WSDL generator all read these tables, so they cannot disagree.

/// The target namespace of every Polyport element.
pub const NS: &str = "urn:polyport:v1";

/// The simple and complex types fields may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Long,
    Int,
    Boolean,
    DateTime,
    Role,
    Status,
    Tag,
    Complex(&'static ComplexType),
}

/// One child element of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub many: bool,
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, required: true, many: false }
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, required: false, many: false }
}

const fn many(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, required: false, many: true }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ComplexType {
    pub name: &'static str,
    pub doc: &'static str,
    pub fields: &'static [Field],
}

pub static TAG_LIST: ComplexType =
    ComplexType { name: "TagList", doc: "Up to 10 tags, each [a-z0-9-]{1,32}.", fields: &[many("tag", Ty::Tag)] };

pub static USER: ComplexType = ComplexType {
    name: "User",
    doc: "A user. Public profiles carry only id and name; the user and admins see every field.",
    fields: &[
        req("id", Ty::String),
        req("name", Ty::String),
        opt("email", Ty::String),
        opt("role", Ty::Role),
        opt("createdAt", Ty::DateTime),
        opt("updatedAt", Ty::DateTime),
        opt("version", Ty::Long),
    ],
};

pub static POST: ComplexType = ComplexType {
    name: "Post",
    doc: "A post. Drafts are visible to their author, editors and admins only.",
    fields: &[
        req("id", Ty::String),
        req("authorId", Ty::String),
        req("title", Ty::String),
        req("body", Ty::String),
        req("status", Ty::Status),
        req("tags", Ty::Complex(&TAG_LIST)),
        opt("publishedAt", Ty::DateTime),
        req("createdAt", Ty::DateTime),
        req("updatedAt", Ty::DateTime),
        req("version", Ty::Long),
    ],
};

pub static FIELD_ISSUE: ComplexType = ComplexType {
    name: "FieldIssue",
    doc: "One problem with one input field.",
    fields: &[req("field", Ty::String), req("issue", Ty::String)],
};

/// The fault detail: the contract's one error model.
pub static ERROR: ComplexType = ComplexType {
    name: "Error",
    doc: "The error model shared by every protocol, carried in the fault detail.",
    fields: &[
        req("code", Ty::String),
        req("message", Ty::String),
        many("details", Ty::Complex(&FIELD_ISSUE)),
        req("requestId", Ty::String),
        opt("retryAfter", Ty::Long),
    ],
};

pub static TOPIC_LIST: ComplexType = ComplexType {
    name: "TopicList",
    doc: "1 to 20 topics: posts, posts/{id}, users/{id}, users/{id}/posts.",
    fields: &[many("topic", Ty::String)],
};

pub static WEBHOOK: ComplexType = ComplexType {
    name: "Webhook",
    doc: "A webhook: every event its owner may read on its topics is POSTed to url, signed.",
    fields: &[
        req("id", Ty::String),
        req("ownerId", Ty::String),
        req("url", Ty::String),
        req("topics", Ty::Complex(&TOPIC_LIST)),
        req("createdAt", Ty::DateTime),
    ],
};

pub static WEBHOOK_DELIVERY: ComplexType = ComplexType {
    name: "WebhookDelivery",
    doc: "One delivery attempt; deliveryId is the Polyport-Delivery-Id header, the same on every retry.",
    fields: &[
        req("id", Ty::String),
        req("webhookId", Ty::String),
        req("deliveryId", Ty::String),
        req("eventId", Ty::Long),
        req("attempt", Ty::Long),
        opt("statusCode", Ty::Long),
        req("succeeded", Ty::Boolean),
        opt("error", Ty::String),
        req("durationMs", Ty::Long),
        req("attemptedAt", Ty::DateTime),
    ],
};

/// One audit log entry (no secret ever appears in one).
pub static AUDIT_ENTRY: ComplexType = ComplexType {
    name: "AuditEntry",
    doc: "One audit log entry: who did what to which object, through which protocol and request, and how it ended.",
    fields: &[
        req("id", Ty::String),
        req("at", Ty::DateTime),
        opt("actorId", Ty::String),
        opt("actorKeyId", Ty::String),
        req("protocol", Ty::String),
        req("requestId", Ty::String),
        opt("traceId", Ty::String),
        req("action", Ty::String),
        opt("target", Ty::String),
        req("outcome", Ty::String),
        opt("clientIp", Ty::String),
    ],
};

/// Every complex type, in the order the WSDL declares them.
pub static TYPES: [&ComplexType; 9] =
    [&TAG_LIST, &USER, &POST, &FIELD_ISSUE, &ERROR, &TOPIC_LIST, &WEBHOOK, &WEBHOOK_DELIVERY, &AUDIT_ENTRY];

/// Operations, matched exhaustively by the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpId {
    Login,
    Register,
    GetUser,
    ListUsers,
    UpdateUser,
    DeleteUser,
    GetPost,
    ListPosts,
    CreatePost,
    UpdatePost,
    PublishPost,
    UnpublishPost,
    DeletePost,
    CreateWebhook,
    ListWebhooks,
    DeleteWebhook,
    ListWebhookDeliveries,
    ListAuditEntries,
}

#[derive(Debug)]
pub struct Operation {
    pub id: OpId,
    /// Also the request element's name (document/literal wrapped).
    pub name: &'static str,
    /// The response element's name.
    pub response: &'static str,
    pub doc: &'static str,
    pub input: &'static [Field],
    pub output: &'static [Field],
}

const PAGE_OUT_POSTS: &[Field] =
    &[many("post", Ty::Complex(&POST)), opt("nextCursor", Ty::String), req("hasMore", Ty::Boolean)];
const PAGE_OUT_USERS: &[Field] =
    &[many("user", Ty::Complex(&USER)), opt("nextCursor", Ty::String), req("hasMore", Ty::Boolean)];
const ONE_POST: &[Field] = &[req("post", Ty::Complex(&POST))];
const ONE_USER: &[Field] = &[req("user", Ty::Complex(&USER))];
const BY_ID: &[Field] = &[req("id", Ty::String)];
const BY_ID_VERSIONED: &[Field] = &[req("id", Ty::String), opt("expectedVersion", Ty::Long)];

pub static OPERATIONS: [Operation; 18] = [
    Operation {
        id: OpId::Login,
        name: "Login",
        response: "LoginResponse",
        doc: "Log in with email and password; answers the same whether or not the email exists.",
        input: &[req("email", Ty::String), req("password", Ty::String)],
        output: &[
            req("accessToken", Ty::String),
            req("tokenType", Ty::String),
            req("expiresIn", Ty::Long),
            req("refreshToken", Ty::String),
        ],
    },
    Operation {
        id: OpId::Register,
        name: "Register",
        response: "RegisterResponse",
        doc: "Register a new member.",
        input: &[req("email", Ty::String), req("name", Ty::String), req("password", Ty::String)],
        output: ONE_USER,
    },
    Operation {
        id: OpId::GetUser,
        name: "GetUser",
        response: "GetUserResponse",
        doc: "A user: every field for the user and admins, else the public profile.",
        input: BY_ID,
        output: ONE_USER,
    },
    Operation {
        id: OpId::ListUsers,
        name: "ListUsers",
        response: "ListUsersResponse",
        doc: "Users, newest first: admins see every field, everyone else public profiles.",
        input: &[opt("limit", Ty::Int), opt("cursor", Ty::String)],
        output: PAGE_OUT_USERS,
    },
    Operation {
        id: OpId::UpdateUser,
        name: "UpdateUser",
        response: "UpdateUserResponse",
        doc: "Change a profile (yourself, or anyone as admin); absent fields stay as they are.",
        input: &[
            req("id", Ty::String),
            opt("email", Ty::String),
            opt("name", Ty::String),
            opt("role", Ty::Role),
            opt("expectedVersion", Ty::Long),
        ],
        output: ONE_USER,
    },
    Operation {
        id: OpId::DeleteUser,
        name: "DeleteUser",
        response: "DeleteUserResponse",
        doc: "Delete a user with their posts, keys and sessions (admins only).",
        input: BY_ID_VERSIONED,
        output: &[],
    },
    Operation {
        id: OpId::GetPost,
        name: "GetPost",
        response: "GetPostResponse",
        doc: "A post. Drafts are visible to their author, editors and admins only.",
        input: BY_ID,
        output: ONE_POST,
    },
    Operation {
        id: OpId::ListPosts,
        name: "ListPosts",
        response: "ListPostsResponse",
        doc: "Posts the caller may read, newest first, filtered by author, status and tag.",
        input: &[
            opt("authorId", Ty::String),
            opt("status", Ty::Status),
            opt("tag", Ty::Tag),
            opt("limit", Ty::Int),
            opt("cursor", Ty::String),
        ],
        output: PAGE_OUT_POSTS,
    },
    Operation {
        id: OpId::CreatePost,
        name: "CreatePost",
        response: "CreatePostResponse",
        doc: "Write a new post; it starts as a draft.",
        input: &[req("title", Ty::String), opt("body", Ty::String), opt("tags", Ty::Complex(&TAG_LIST))],
        output: ONE_POST,
    },
    Operation {
        id: OpId::UpdatePost,
        name: "UpdatePost",
        response: "UpdatePostResponse",
        doc: "Change a post (author, editors, admins); absent fields stay as they are.",
        input: &[
            req("id", Ty::String),
            opt("title", Ty::String),
            opt("body", Ty::String),
            opt("tags", Ty::Complex(&TAG_LIST)),
            opt("expectedVersion", Ty::Long),
        ],
        output: ONE_POST,
    },
    Operation {
        id: OpId::PublishPost,
        name: "PublishPost",
        response: "PublishPostResponse",
        doc: "Publish a post (author, editors, admins). Publishing a published post changes nothing.",
        input: BY_ID_VERSIONED,
        output: ONE_POST,
    },
    Operation {
        id: OpId::UnpublishPost,
        name: "UnpublishPost",
        response: "UnpublishPostResponse",
        doc: "Return a post to draft (editors and admins).",
        input: BY_ID_VERSIONED,
        output: ONE_POST,
    },
    Operation {
        id: OpId::DeletePost,
        name: "DeletePost",
        response: "DeletePostResponse",
        doc: "Delete a post (author, editors, admins).",
        input: BY_ID_VERSIONED,
        output: &[],
    },
    Operation {
        id: OpId::CreateWebhook,
        name: "CreateWebhook",
        response: "CreateWebhookResponse",
        doc: "Register a webhook for every event you may read on its topics; the signing secret is in this answer only.",
        input: &[req("url", Ty::String), req("topics", Ty::Complex(&TOPIC_LIST))],
        output: &[req("webhook", Ty::Complex(&WEBHOOK)), req("secret", Ty::String)],
    },
    Operation {
        id: OpId::ListWebhooks,
        name: "ListWebhooks",
        response: "ListWebhooksResponse",
        doc: "Your webhooks (their secrets are never shown again).",
        input: &[],
        output: &[many("webhook", Ty::Complex(&WEBHOOK))],
    },
    Operation {
        id: OpId::DeleteWebhook,
        name: "DeleteWebhook",
        response: "DeleteWebhookResponse",
        doc: "Delete a webhook (yours, or anyone's as an admin).",
        input: BY_ID,
        output: &[],
    },
    Operation {
        id: OpId::ListWebhookDeliveries,
        name: "ListWebhookDeliveries",
        response: "ListWebhookDeliveriesResponse",
        doc: "A webhook's delivery attempts, newest first (its owner or an admin).",
        input: &[req("id", Ty::String), opt("limit", Ty::Int), opt("cursor", Ty::String)],
        output: &[
            many("delivery", Ty::Complex(&WEBHOOK_DELIVERY)),
            opt("nextCursor", Ty::String),
            req("hasMore", Ty::Boolean),
        ],
    },
    Operation {
        id: OpId::ListAuditEntries,
        name: "ListAuditEntries",
        response: "ListAuditEntriesResponse",
        doc: "The audit log, newest first, filtered (admins only; since is an RFC 3339 time).",
        input: &[
            opt("actorId", Ty::String),
            opt("action", Ty::String),
            opt("target", Ty::String),
            opt("since", Ty::String),
            opt("limit", Ty::Int),
            opt("cursor", Ty::String),
        ],
        output: &[many("entry", Ty::Complex(&AUDIT_ENTRY)), opt("nextCursor", Ty::String), req("hasMore", Ty::Boolean)],
    },
];

/// The operation whose request element is `{NS}name`.
pub fn operation(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.name == name)
}

/// The SOAPAction (SOAP 1.1) and `action` parameter (SOAP 1.2) of an operation.
pub fn action(op: &Operation) -> String {
    format!("{NS}#{}", op.name)
}

/// The optional header block carrying an idempotency key.
pub const IDEMPOTENCY_KEY: &str = "IdempotencyKey";
