//! An app's command line.
//!
//! appc 0.8.11 lets the program be a bare name: the executor then searches
//! `PATH` as execvp(3) does (and so does actool). That is also how a
//! non-absolute Docker/OCI entrypoint is carried over: it is kept as
//! written, and [`Exec::lookup`] tells the executor what to do with it.

use serde::Serialize;
use serde_json::Value;

use crate::error::SchemaError;
use crate::json::{deserialize_via_from_json, locate, FromJson, Path};

/// argv: the program followed by its arguments; may be empty when the image
/// leaves the command to whoever runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Exec(Vec<String>);

/// How the executor finds the program of an [`Exec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramLookup {
    /// `/usr/bin/app`: used as is, inside the app's root.
    Absolute,
    /// `app`: no slash, so search the app's `PATH` (execvp semantics).
    SearchPath,
    /// `bin/app`, `./app`: relative to the app's working directory.
    RelativeToWorkingDirectory,
}

impl Exec {
    pub fn new(argv: Vec<String>) -> Result<Self, SchemaError> {
        if argv.first().is_some_and(|p| p.is_empty()) {
            return Err(SchemaError::invalid_because(
                "exec",
                "",
                "the program name is empty",
            ));
        }
        if let Some(arg) = argv.iter().find(|a| a.contains('\0')) {
            return Err(SchemaError::invalid_because(
                "exec argument",
                arg.as_str(),
                "contains a NUL byte",
            ));
        }
        Ok(Exec(argv))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn program(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    /// Arguments after the program.
    pub fn args(&self) -> &[String] {
        self.0.get(1..).unwrap_or_default()
    }

    pub fn argv(&self) -> &[String] {
        &self.0
    }

    pub fn lookup(&self) -> Option<ProgramLookup> {
        let program = self.program()?;
        Some(if program.starts_with('/') {
            ProgramLookup::Absolute
        } else if program.contains('/') {
            ProgramLookup::RelativeToWorkingDirectory
        } else {
            ProgramLookup::SearchPath
        })
    }

    /// True when the program must be found in `PATH` before exec.
    pub fn needs_path_lookup(&self) -> bool {
        self.lookup() == Some(ProgramLookup::SearchPath)
    }

    /// This command with its arguments replaced, keeping the program
    /// (`vessel run IMAGE -- args`).
    pub fn with_args(&self, args: Vec<String>) -> Result<Exec, SchemaError> {
        let program = self.program().into_iter().map(str::to_owned);
        Exec::new(program.chain(args).collect())
    }
}

impl TryFrom<Vec<String>> for Exec {
    type Error = SchemaError;
    fn try_from(argv: Vec<String>) -> Result<Self, SchemaError> {
        Exec::new(argv)
    }
}

impl FromJson for Exec {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        Exec::new(Vec::from_json(value, at)?).map_err(|e| locate(e, at))
    }
}

deserialize_via_from_json!(Exec);

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(args: &[&str]) -> Result<Exec, SchemaError> {
        Exec::new(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn classifies_programs() {
        let e = exec(&["/usr/bin/reduce-worker", "--quiet"]).unwrap();
        assert_eq!(e.program(), Some("/usr/bin/reduce-worker"));
        assert_eq!(e.args(), ["--quiet"]);
        assert_eq!(e.lookup(), Some(ProgramLookup::Absolute));
        assert!(exec(&["sh", "-c", "true"]).unwrap().needs_path_lookup());
        assert_eq!(
            exec(&["./run"]).unwrap().lookup(),
            Some(ProgramLookup::RelativeToWorkingDirectory)
        );
        let empty = exec(&[]).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.lookup(), None);
        assert!(empty.args().is_empty());
    }

    #[test]
    fn rejects_empty_program_and_nul() {
        assert!(exec(&["", "x"]).is_err());
        assert!(exec(&["/bin/sh", "a\0b"]).is_err());
        let e = Exec::from_json(&serde_json::json!([1]), &Path::root().key("exec")).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "exec[0]": expected a string, found a number"#
        );
    }

    #[test]
    fn replaces_args() {
        let e = exec(&["/bin/echo", "a"]).unwrap();
        assert_eq!(
            e.with_args(vec!["b".into(), "c".into()]).unwrap().argv(),
            ["/bin/echo", "b", "c"]
        );
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"["/bin/echo","a"]"#);
    }
}
