//! How a POST that met 409 proves its object is there after all: a description of one read
//! (plain data, made by the pure diff; [`super::client`] performs it).

/// How a POST that meets 409 can prove the object is there after all.
#[derive(Debug, Clone)]
pub enum Confirm {
    /// GET this instance path; 200 means the object exists.
    Get(String),
    /// GET this collection; the object exists when an element has this `id`.
    ListHasId { list: String, id: String },
    /// GET this collection of strings; the object exists when it holds `value`.
    ListHasValue { list: String, value: String },
    /// GET this instance path; the write is there when the answer's `field` is `value` (a
    /// binding such as `managingUser`, whose 409 means "already set to this user").
    GetHasField {
        path: String,
        field: String,
        value: String,
    },
}
