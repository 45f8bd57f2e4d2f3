//! Property tests: parsing and compiling never panic, whatever the text, and errors
//! always point inside the query.

use std::borrow::Cow;

use proptest::prelude::*;

use crate::value::Value;

use super::tests::{MapRow, NOW, TestCatalog};
use super::*;

const VALID: &[&str] = &[
    "SELECT Id, Name, Owner.Name FROM Account WHERE Name LIKE 'a\\_%' AND (Industry IN ('x', null) \
     OR NOT AnnualRevenue >= -1.5) ORDER BY Name DESC NULLS LAST, Id LIMIT 10 OFFSET 5",
    "SELECT COUNT() FROM Contact WHERE Account.CreatedDate = LAST_N_DAYS:30",
    "SELECT Id FROM Account WHERE CreatedDate > 2024-01-02T03:04:05.123+01:00 AND \
     LastActivityDate <= 2024-02-29 AND Tags__c INCLUDES ('a;b', 'c')",
    "SELECT COUNT(Id) total FROM Account WHERE Id NOT IN ('0011Y00003HVMu4') AND IsDeleted = false",
    "select name from account where name != 'O\\'Brien' or numberofemployees < 10",
];

/// Characters that mean something to the lexer or parser, plus a few that do not.
const INTERESTING: &[char] = &[
    ' ', '\n', '\'', '\\', '(', ')', ',', '.', ':', '=', '<', '>', '!', '-', '+', '%', '_', 'T', 'Z', '0', '9', 'a',
    'É', '😀', '"', ';', '\r',
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![prop::sample::select(INTERESTING), any::<char>(),];
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), ch).prop_map(|(i, c)| Edit::Replace(i, c)),
    ]
}

fn apply(query: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = query.chars().collect();
    for e in edits {
        let n = chars.len();
        match *e {
            Edit::Insert(i, c) => chars.insert(i % (n + 1), c),
            Edit::Delete(i) if n > 0 => {
                chars.remove(i % n);
            }
            Edit::Replace(i, c) if n > 0 => chars[i % n] = c,
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Compiles `soql`; on success runs the query over a few rows, on failure checks the
/// error points into the text and renders.
fn exercise(soql: &str) {
    let lines = soql.split('\n').count();
    match compile(soql, &TestCatalog, NOW) {
        Ok(b) => {
            let rows: [Vec<(&str, Value<'static>)>; 2] = [
                vec![],
                vec![
                    ("Name", Value::Str(Cow::Borrowed("Ärger"))),
                    ("Id", Value::Str(Cow::Borrowed("0011Y00003HVMu4QAH"))),
                    ("AnnualRevenue", Value::Float(3.5)),
                    ("CreatedDate", Value::DateTime(NOW)),
                    ("Tags__c", Value::Str(Cow::Borrowed("a;b"))),
                ],
            ];
            for r in &rows {
                let row = MapRow { bound: &b, values: r };
                let _ = b.matches(&row);
                let _ = b.compare(&row, &row);
            }
            for f in &b.fields {
                assert!(!f.path.is_empty());
            }
        }
        Err(e) => {
            assert!(e.row >= 1 && e.row <= lines, "{e:?} in {soql:?}");
            assert!(e.column >= 1, "{e:?}");
            let msg = e.message(soql);
            assert!(msg.contains(&format!("ERROR at Row:{}:Column:{}", e.row, e.column)));
        }
    }
}

#[test]
fn the_seed_queries_are_valid() {
    for q in VALID {
        if let Err(e) = compile(q, &TestCatalog, NOW) {
            panic!("{}", e.message(q));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(soql in any::<String>()) {
        exercise(&soql);
    }

    #[test]
    fn soql_looking_text_never_panics(soql in "[ -~\n]{0,120}") {
        exercise(&soql);
    }

    #[test]
    fn mutated_queries_never_panic(
        seed in prop::sample::select(VALID),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        exercise(&apply(seed, &edits));
    }

    #[test]
    fn tails_of_valid_queries_never_panic(seed in prop::sample::select(VALID), cut in any::<usize>()) {
        let chars: Vec<char> = seed.chars().collect();
        let cut = cut % (chars.len() + 1);
        exercise(&chars[..cut].iter().collect::<String>());
        exercise(&chars[cut..].iter().collect::<String>());
    }
}
