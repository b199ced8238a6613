//! The error a client can be told about, and the one place it becomes wire text.
//! Lower layers have their own enums (`DbError`, `AuthError`, `ConfigError`); they
//! are logged where handled and reach the client only as one of these.

/// Why a request failed, as far as the client is concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Missing or ill-typed field; the detail is logged, not sent (the original sent only 参数错误).
    #[error("bad params: {0}")]
    BadParams(String),
    #[error("unknown class or action")]
    UnknownAction,
    #[error("message longer than the configured limit")]
    MsgTooLong,
    #[error("system notices cannot be sent by clients")]
    SystemReserved,
    #[error("chat_type not supported yet")]
    UnsupportedChatType,
    #[error("forbidden")]
    Forbidden,
    #[error("binary frames are not supported")]
    BinaryFrame,
    #[error("no such shop")]
    UnknownShop,
    #[error("not found")]
    NotFound,
    #[error("that agent is not routable")]
    AgentUnavailable,
    #[error("too many messages")]
    RateLimited,
    #[error("storage unavailable")]
    StorageUnavailable,
    #[error("server is shutting down")]
    ShuttingDown,
    #[error("no registered ids left")]
    RegistrationClosed,
    /// An image URL on a host that `media.allowed_hosts` does not list.
    #[error("image host not allowed")]
    ImageHostNotAllowed,
    /// The shop has blocked this consumer (PROTOCOL.md §10).
    #[error("blocked by the shop")]
    Blocked,
    #[error("already rated")]
    AlreadyRated,
    #[error("nothing to rate")]
    NothingToRate,
    /// Past `limits.recall_secs` (PROTOCOL.md §11).
    #[error("too late to recall")]
    TooLate,
    /// The sensitive-word list refuses the message (PROTOCOL.md §14).
    #[error("blocked word")]
    ContentBlocked,
    /// The shop keeps its most quick replies already.
    #[error("too many quick replies")]
    TooMany,
    /// The connection that asked closed before its read ran; nobody is told.
    #[error("the connection is gone")]
    ConnectionGone,
}

impl ChatError {
    pub fn bad(detail: impl Into<String>) -> ChatError {
        ChatError::BadParams(detail.into())
    }

    /// The `msg` and `error` fields of a code-0 reply: the original's Chinese text where
    /// PROTOCOL.md gives one, plain English and a stable word for everything new.
    pub fn wire(&self) -> (&'static str, &'static str) {
        match self {
            ChatError::BadParams(_) => ("参数错误", "bad_params"),
            ChatError::UnknownAction => ("unknown class or action", "unknown_action"),
            ChatError::MsgTooLong => ("msg is longer than the limit", "msg_too_long"),
            ChatError::SystemReserved => {
                ("chat_type 3 is reserved for system notices", "forbidden")
            }
            ChatError::UnsupportedChatType => ("chat_type not supported", "unsupported_chat_type"),
            ChatError::Forbidden => ("forbidden", "forbidden"),
            ChatError::BinaryFrame => (
                "binary frames are not supported; send JSON text",
                "binary_frame",
            ),
            ChatError::UnknownShop => ("no such shop", "unknown_shop"),
            ChatError::NotFound => ("not found", "not_found"),
            ChatError::Blocked => ("the shop has blocked you", "blocked"),
            ChatError::AlreadyRated => ("this session is already rated", "already_rated"),
            ChatError::NothingToRate => (
                "no resolved session of the last 7 days to rate",
                "nothing_to_rate",
            ),
            ChatError::TooMany => ("the shop has too many quick replies", "too_many"),
            ChatError::TooLate => ("too late to recall this message", "too_late"),
            ChatError::ContentBlocked => ("the message contains a blocked word", "content_blocked"),
            ChatError::AgentUnavailable => ("that agent is not online", "agent_unavailable"),
            ChatError::RateLimited => ("too many messages, slow down", "rate_limited"),
            ChatError::StorageUnavailable => {
                ("storage unavailable, try again", "storage_unavailable")
            }
            ChatError::ShuttingDown => ("server is shutting down, reconnect", "shutting_down"),
            ChatError::ConnectionGone => ("connection closed", "connection_gone"),
            ChatError::ImageHostNotAllowed => (
                "images must be uploads of this server or on media.allowed_hosts",
                "image_not_allowed",
            ),
            ChatError::RegistrationClosed => (
                "registration is closed: no account ids are left",
                "registration_closed",
            ),
        }
    }
}
