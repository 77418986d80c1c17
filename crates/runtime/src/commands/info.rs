//! `state` and `list`: read-only, no lock taken (records are replaced whole).

use crate::error::{Result, RuntimeError};
use crate::layout::Root;
use crate::state::{owner, Container, StateView};

pub fn state(root: &Root, id: &str) -> Result<i32> {
    let (dir, record) = Container::peek(root, id)?;
    let view = record.view(record.status(&dir), owner(&dir));
    println!("{}", serde_json::to_string_pretty(&view).expect("json"));
    Ok(0)
}

/// Every container under the root, oldest first.
pub fn views(root: &Root) -> Result<Vec<StateView>> {
    let entries = match std::fs::read_dir(root.dir()) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io("reading", root.dir())(e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // A container deleted meanwhile, or a stray directory, is not listed.
        if let Ok((dir, record)) = Container::peek(root, &name) {
            out.push((
                record.created,
                record.view(record.status(&dir), owner(&dir)),
            ));
        }
    }
    out.sort_by_key(|a| a.0);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

pub fn list(root: &Root, format: &str, quiet: bool) -> Result<i32> {
    let views = views(root)?;
    if quiet {
        for v in &views {
            println!("{}", v.id);
        }
        return Ok(0);
    }
    match format {
        "json" => println!("{}", serde_json::to_string(&views).expect("json")),
        "table" => print!("{}", table(&views)),
        other => {
            return Err(RuntimeError::Usage(format!(
                "invalid format option {other:?}: table or json"
            )))
        }
    }
    Ok(0)
}

/// runc's table: Go's tabwriter with minimum width 12 and padding 3.
pub fn table(views: &[StateView]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for v in views {
        rows.push([
            v.id.clone(),
            v.pid.to_string(),
            v.status.clone(),
            v.bundle.display().to_string(),
            v.created.clone(),
            v.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (c, cell) in row.iter().enumerate() {
            if c == 5 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_table_is_runcs() {
        assert_eq!(
            super::table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }
}
