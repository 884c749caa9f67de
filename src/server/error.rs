//! The one error type of the embedded endpoint. Every handler returns `Result<_, Error>`, and
//! this enum alone decides the HTTP status and the JSON body (`api::types::ErrorBody`), so the
//! error-to-status mapping exists exactly once. Internal details go to the log, never the body.

use crate::api::types::ErrorBody;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A request the HTTP layer cannot take as it is (an encoded `/` in a path segment, a
    /// body whose framing is broken).
    BadRequest(String),
    /// No (usable) credentials: 401 with a Basic challenge for this realm.
    Unauthorized {
        realm: String,
    },
    /// Address outside the ACL, or wrong credentials.
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed,
    /// Duplicate id or natural key, or a binding that already exists.
    Conflict(String),
    /// Malformed JSON, a wrong type or a missing required field; the message names the field.
    Precondition(String),
    /// Body larger than `server.max_body_bytes`.
    PayloadTooLarge,
    /// Well-formed, but not a request this resource takes (the agent's `POST …/sync` with an
    /// unknown field, a status-page form without its CSRF token); the message says what to send.
    Unprocessable(String),
    /// The request could not be served for a reason the client should read (the agent could not
    /// compute its plan: FreePBX or iSymphony unreadable). The message is shown; it must not
    /// hold secrets (the agent's error texts never do).
    Failed(String),
    /// Anything unexpected; the text is logged, the client only sees a generic message.
    Internal(String),
    /// A state-changing agent request whose body is not JSON (a form a foreign page could
    /// have sent); the message says what to send.
    UnsupportedMediaType(String),
    /// The request names a host this listener does not answer for (DNS rebinding).
    Misdirected(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Precondition(_) => StatusCode::PRECONDITION_FAILED,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
        }
    }

    /// The text the client sees.
    pub fn message(&self) -> String {
        match self {
            Error::Unauthorized { .. } => "Authentication required.".into(),
            Error::MethodNotAllowed => "Method not allowed on this resource.".into(),
            Error::PayloadTooLarge => "Request body too large.".into(),
            Error::Internal(_) => "Internal server error.".into(),
            Error::BadRequest(m)
            | Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::Conflict(m)
            | Error::Precondition(m)
            | Error::Unprocessable(m)
            | Error::Failed(m)
            | Error::UnsupportedMediaType(m)
            | Error::Misdirected(m) => m.clone(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }
    pub fn conflict(what: impl Into<String>) -> Self {
        Error::Conflict(what.into())
    }
    pub fn precondition(what: impl Into<String>) -> Self {
        Error::Precondition(what.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status().as_u16(), self.message())
    }
}

impl std::error::Error for Error {}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(detail) = &self {
            tracing::error!(detail = %detail, "internal error while serving a request");
        }
        let status = self.status();
        let body = ErrorBody {
            status: status.as_u16(),
            message: self.message(),
        };
        let json = serde_json::to_vec(&body)
            .expect("a derived Serialize with string keys always serialises");
        let mut resp = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response();
        if let Error::Unauthorized { realm } = &self {
            let challenge = format!("Basic realm=\"{}\"", realm.replace('"', "'"));
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_are_not_sent() {
        let e = Error::Internal("db path /secret/x".into());
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message().contains("secret"));
    }

    #[test]
    fn unauthorized_carries_the_challenge() {
        let r = Error::Unauthorized {
            realm: "iSymphony".into(),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"iSymphony\""
        );
    }
}
