//! Backends: what the pipeline's traits run on. `local` is the embedded default.

pub mod local;
