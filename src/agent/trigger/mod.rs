//! What starts a pass: database and file changes, and a wiped or reinstalled iSymphony.

pub(crate) mod binlog;
pub mod changes;
pub(crate) mod wipecheck;
