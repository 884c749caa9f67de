//! Reading FreePBX: modern and 2.8-shaped databases, connection errors, CDR and device modes,
//! unknown sources, voicemail.conf.

mod cdr_devices;
mod errors;
mod legacy;
mod modern;
mod unknown_sources;
mod voicemail_missing_include;
