//! Secrets (passwords, tokens) come from an environment variable or a file, never from the
//! config file itself, and are never logged.

use std::path::Path;

/// The secret in the environment variable `env` when it is set, else the first line of `file`
/// when one is given, else `None`. The error names the file, never the secret.
pub fn read(env: &str, file: Option<&Path>) -> Result<Option<String>, String> {
    if !env.is_empty() {
        if let Ok(v) = std::env::var(env) {
            return Ok(Some(v));
        }
    }
    match file {
        None => Ok(None),
        Some(path) => std::fs::read_to_string(path)
            .map(|s| Some(s.lines().next().unwrap_or("").trim_end().to_string()))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
    }
}

/// A config problem when `file` is set but unreadable (checked by `--check-config`, no network).
pub fn file_problem(field: &'static str, file: Option<&Path>) -> Option<(&'static str, String)> {
    let path = file?;
    std::fs::metadata(path).err().map(|e| (field, format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_over_file_and_file_gives_its_first_line() {
        let path = std::env::temp_dir().join(format!("secret-{}", std::process::id()));
        std::fs::write(&path, "s3cret\nignored\n").unwrap();
        assert_eq!(read("", Some(&path)).unwrap().as_deref(), Some("s3cret"));
        std::env::set_var("SMARTCITY_TEST_SECRET_X", "from-env");
        assert_eq!(read("SMARTCITY_TEST_SECRET_X", Some(&path)).unwrap().as_deref(), Some("from-env"));
        assert_eq!(read("SMARTCITY_TEST_SECRET_UNSET", None).unwrap(), None);
        assert!(read("", Some(Path::new("/nonexistent/pw"))).unwrap_err().contains("/nonexistent/pw"));
        assert!(file_problem("password_file", Some(Path::new("/nonexistent/pw"))).is_some());
    }
}
