//! Searches: an exact name, or a regular expression matched against the whole name.

use regex::Regex;

/// Characters that make a search a regular expression rather than an exact name. (`-` and `:`
/// mean something only inside a class, which needs `[`.)
const META: &str = "\\.+*?()|[]{}^$";

/// A compiled subscription search.
///
/// A search with no regular-expression metacharacters is an exact name and is matched by a
/// hash lookup; anything else is compiled once as `^(?:search)$`, so it must match the whole
/// name (`worker-10:[-a-f0-9]+` does not match `xworker-10:ab`).
#[derive(Debug, Clone)]
pub enum Search {
    /// Matches one name exactly.
    Exact(String),
    /// Matches every name the whole of which the expression matches.
    Pattern(Regex),
}

impl Search {
    /// Compiles `search`; the error is the regex crate's own explanation.
    pub fn new(search: &str) -> Result<Search, String> {
        if search.is_empty() {
            return Err("the search is empty".to_string());
        }
        if !search.chars().any(|c| META.contains(c)) {
            return Ok(Search::Exact(search.to_string()));
        }
        Regex::new(&format!("^(?:{search})$"))
            .map(Search::Pattern)
            .map_err(|e| e.to_string())
    }

    /// Does `name` match, whole?
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Search::Exact(exact) => exact == name,
            Search::Pattern(regex) => regex.is_match(name),
        }
    }

    /// The exact name, if this search is one.
    pub fn exact(&self) -> Option<&str> {
        match self {
            Search::Exact(exact) => Some(exact),
            Search::Pattern(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_names_are_exact() {
        let s = Search::new("test-multihosting:worker-9").unwrap();
        assert_eq!(s.exact(), Some("test-multihosting:worker-9"));
        assert!(s.matches("test-multihosting:worker-9"));
        assert!(!s.matches("test-multihosting:worker-90"));
    }

    #[test]
    fn patterns_match_the_whole_name() {
        let s = Search::new("worker-10:[-a-f0-9]+").unwrap();
        assert!(s.exact().is_none());
        assert!(s.matches("worker-10:ab-12"));
        assert!(!s.matches("xworker-10:ab"));
        assert!(!s.matches("worker-10:abx"));
        let alt = Search::new("a|b").unwrap();
        assert!(alt.matches("a") && alt.matches("b") && !alt.matches("ab"));
    }

    #[test]
    fn bad_patterns_explain_themselves() {
        let err = Search::new("worker-(").unwrap_err();
        assert!(err.contains("unclosed group"), "{err}");
        assert!(Search::new("").is_err());
    }
}
