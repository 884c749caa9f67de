//! The docs and the crate's layers match the code (reads the real source files).

mod layers;
mod pages;
