//! The lakehouse destination's storage: Delta Lake tables on local disk or S3 that other
//! engines read (docs/lake.md has the design and why it is built on delta_kernel).
//!
//! - [`delta`]: one Delta table: its versions (data files, the flow's mark and
//!   transaction number) and atomic commits of added and removed files with the flow's
//!   mark.
//!
//! `type = "lake"` is still refused by the config: the flow sink (staging, the merge over
//! the files holding changed Ids, cleanup) is not built yet.

pub mod delta;
