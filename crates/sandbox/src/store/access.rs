//! Reading rows through a query: field paths resolved to lookup hops and columns
//! ([`Accessor`]), the row view the SOQL evaluator reads ([`RowView`]), and the
//! schema lookups the SOQL binder needs (`Catalog` for [`Org`]).

use super::org::Org;
use crate::soql::{Catalog, CatalogField, RowAccess};
use crate::value::Value;

impl Org {
    /// Readers of one query's field paths, resolved once.
    pub fn accessors(&self, table: usize, paths: &[Vec<String>]) -> Vec<Accessor> {
        paths
            .iter()
            .map(|path| {
                let mut hops = Vec::new();
                let mut t = table;
                for rel in &path[..path.len().saturating_sub(1)] {
                    let def = &self.tables[t].def;
                    let Some((col, f)) = def
                        .fields
                        .iter()
                        .enumerate()
                        .find(|(_, f)| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(rel)))
                    else {
                        return Accessor { hops: Vec::new(), table: t, col: None };
                    };
                    hops.push(col);
                    t = f.reference_to.first().and_then(|n| self.table_index(n)).unwrap_or(t);
                }
                let col = path.last().and_then(|n| self.tables[t].def.field_ci(n)).map(|(c, _)| c);
                Accessor { hops, table: t, col }
            })
            .collect()
    }

    /// Follows an accessor's lookups from `row` of `table` to the row it reads.
    pub fn follow(&self, table: usize, row: u32, acc: &Accessor) -> Option<(usize, u32)> {
        let (mut t, mut r) = (table, row);
        for &col in &acc.hops {
            let Value::Str(id) = self.tables[t].stored(r, col) else { return None };
            let (nt, nr) = self.locate(&id)?;
            t = nt;
            r = nr;
        }
        Some((t, r))
    }
}

/// How to read one field path (`Owner.Manager.Name`) from a row: the lookup columns to
/// follow, then the column to read in the table reached.
#[derive(Debug, Clone)]
pub struct Accessor {
    /// Reference columns to follow, in order.
    pub hops: Vec<usize>,
    /// The table the path ends in.
    pub table: usize,
    /// The column read there (`None` if the path no longer resolves).
    pub col: Option<usize>,
}

/// One row seen through a query's accessors: what the SOQL evaluator reads.
pub struct RowView<'a> {
    /// The org.
    pub org: &'a Org,
    /// The queried table.
    pub table: usize,
    /// The row.
    pub row: u32,
    /// Accessors parallel to the query's fields.
    pub accessors: &'a [Accessor],
    /// Today in days since the epoch (for formulas).
    pub today: i32,
}

impl RowAccess for RowView<'_> {
    fn value(&self, field: usize) -> Value<'_> {
        let acc = &self.accessors[field];
        let Some(col) = acc.col else { return Value::Null };
        if acc.hops.is_empty() {
            return self.org.cell(self.table, self.row, col, self.today);
        }
        match self.org.follow(self.table, self.row, acc) {
            Some((t, r)) => self.org.cell(t, r, col, self.today),
            None => Value::Null,
        }
    }
}

impl Catalog for Org {
    fn object(&self, name: &str) -> Option<String> {
        self.table(name).map(|t| t.def.name.clone())
    }

    fn field(&self, object: &str, name: &str) -> Option<CatalogField> {
        let (_, f) = self.table(object)?.def.field_ci(name)?;
        Some(CatalogField { name: f.name.clone(), ty: f.ty, filterable: f.filterable, sortable: f.sortable })
    }

    fn relationship(&self, object: &str, name: &str) -> Option<(String, String)> {
        let t = self.table(object)?;
        t.def.fields.iter().find_map(|f| {
            let rel = f.relationship_name.as_deref()?;
            if !rel.eq_ignore_ascii_case(name) {
                return None;
            }
            let target = self.table(f.reference_to.first()?)?.def.name.clone();
            Some((rel.to_string(), target))
        })
    }
}
