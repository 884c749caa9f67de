//! Reading FreePBX: one consistent [`snapshot::Snapshot`] of the database and files, and the
//! [`mapping`] of that snapshot to the desired iSymphony state.

pub mod mapping;
