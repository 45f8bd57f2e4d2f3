//! Sources: the SaaS APIs sluice reads from, and the pure planning shared by all of them.
//!
//! Only Salesforce exists so far ([`salesforce`]). Window planning ([`window`]) is
//! source-independent: it needs a cursor clock, not an API.

pub mod salesforce;
pub mod window;

pub use window::plan_windows;
