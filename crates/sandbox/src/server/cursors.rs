//! Open REST query cursors ([`Cursors`]): the rows a query matched and how to render
//! them, kept so its locator pages (`/query/01g…-2000`) can be served later.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;

use super::render::Projection;

pub(super) struct Cursor {
    pub(super) table: usize,
    pub(super) rows: Arc<Vec<u32>>,
    pub(super) projection: Arc<Projection>,
    pub(super) batch: usize,
    pub(super) created: i64,
}

/// Open query cursors by locator id.
#[derive(Default)]
pub struct Cursors {
    pub(super) open: Mutex<HashMap<String, Cursor>>,
    pub(super) next: AtomicU64,
}
