//! What starts a pass: database and file changes, and a wiped or reinstalled iSymphony.

pub mod changes;
pub(crate) mod wipecheck;
