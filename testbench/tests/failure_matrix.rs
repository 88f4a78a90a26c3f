//! `docs/failures.md` names, for every fault it claims is handled, the test that proves it. This
//! keeps those claims honest: every row of its "Tested on the real bench" table names test files
//! that exist in the workspace and hold at least one test, so a test renamed or removed shows here
//! instead of leaving the document pointing at nothing.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testbench is in the workspace").to_path_buf()
}

/// The rows of the table under `## Tested on the real bench`, as their cells.
fn tested_rows(doc: &str) -> Vec<Vec<String>> {
    let section = doc.split("## Tested on the real bench").nth(1).expect("the section exists");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("| ---"))
        .skip(1) // the header
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

/// The `path/to/file.rs` spans of a cell.
fn test_files(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).filter(|s| s.ends_with(".rs")).map(str::to_string).collect()
}

#[test]
fn every_fault_the_document_claims_names_a_test_that_exists() {
    let root = workspace();
    let doc = std::fs::read_to_string(root.join("docs/failures.md")).expect("docs/failures.md");
    let rows = tested_rows(&doc);
    assert!(rows.len() >= 20, "the table was found: {} rows", rows.len());
    for row in rows {
        let last = row.last().expect("a row has cells");
        let files = test_files(last);
        assert!(!files.is_empty(), "the row `{}` names no test file", row[0]);
        for file in files {
            let path = root.join(&file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("the row `{}` names {file}, which cannot be read: {e}", row[0]));
            assert!(
                text.contains("#[test]") || text.contains("#[tokio::test"),
                "the row `{}` names {file}, which holds no test",
                row[0]
            );
        }
    }
}

#[test]
fn rows_are_read_cell_by_cell() {
    let doc = "x\n## Tested on the real bench\n\n| fault | lost | test |\n| --- | --- | --- |\n| a | 0 | `a/b.rs` and `c/d.rs` |\n\n## Next\n| z | y |";
    let rows = tested_rows(doc);
    assert_eq!(rows.len(), 1);
    assert_eq!(test_files(&rows[0][2]), ["a/b.rs", "c/d.rs"]);
}
