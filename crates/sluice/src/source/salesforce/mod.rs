//! The Salesforce source: the pure cores first, the I/O edges (auth, REST, Bulk) later.
//!
//! - [`classify`]: every HTTP response and transport failure → one [`classify::Disposition`].
//! - [`describe`]: describe JSON → [`crate::model::TableSchema`] with the DESIGN type mapping.
//! - [`soql`]: SOQL text for a window, literal formatting, and field-list splitting for
//!   URLs that would be too long.

pub mod classify;
pub mod describe;
pub mod soql;
