//! Searches: an exact name, or a regular expression matched against the whole name.

use crate::ids::SubId;
use regex::Regex;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Characters that make a search a regular expression rather than an exact name. (`-` and `:`
/// mean something only inside a class, which needs `[`.)
const META: &str = "\\.+*?()|[]{}^$";

/// Whether `name` may be published: 1 to 1024 bytes, no whitespace or control characters.
/// The rule of every process and every directory (one place, so they cannot drift apart).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 1024 && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// A compiled subscription search.
///
/// A search with no regular-expression metacharacters is an exact name and is matched by a
/// hash lookup; anything else is compiled once as `^(?:search)$`, so it must match the whole
/// name (`worker-10:[-a-f0-9]+` does not match `xworker-10:ab`).
#[derive(Debug, Clone)]
pub enum Search {
    /// Matches one name exactly.
    Exact(String),
    /// A literal followed by `.*` (`svc-.*`): matches every name that starts with it (and has
    /// no newline after it, as `.` would not). No regular expression is compiled.
    Prefix(String),
    /// Matches every name the whole of which the expression matches.
    Pattern {
        /// The expression, anchored at both ends.
        regex: Regex,
        /// What every name it matches starts with (perhaps nothing).
        prefix: String,
    },
}

/// Why a search cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SearchError {
    /// The search is the empty string.
    #[error("the search is empty")]
    Empty,
    /// The search is not a valid regular expression.
    #[error("invalid search {search:?}: {source}")]
    Syntax {
        /// The search as given.
        search: String,
        /// The regular-expression parser's explanation.
        #[source]
        source: Box<regex_syntax::Error>,
    },
    /// The expression is valid but cannot be compiled (it is too large).
    #[error("invalid search {search:?}: {source}")]
    Compile {
        /// The search as given.
        search: String,
        /// The regex compiler's explanation.
        #[source]
        source: regex::Error,
    },
}

impl Search {
    /// Compiles `search`, the one way every part of layer-cake reads a search (subscriptions,
    /// `layer-cake status`/`network`, role selection).
    pub fn new(search: &str) -> Result<Search, SearchError> {
        if search.is_empty() {
            return Err(SearchError::Empty);
        }
        if !search.chars().any(|c| META.contains(c)) {
            return Ok(Search::Exact(search.to_string()));
        }
        if let Some(literal) = search.strip_suffix(".*") {
            if !literal.is_empty() && !literal.chars().any(|c| META.contains(c)) {
                return Ok(Search::Prefix(literal.to_string()));
            }
        }
        // On its own first: an unbalanced `)` would otherwise close the anchoring group early
        // (`a)|(b` must not become `^(?:a)|(b)$`).
        regex_syntax::Parser::new()
            .parse(search)
            .map_err(|e| SearchError::Syntax {
                search: search.to_string(),
                source: Box::new(e),
            })?;
        let regex = Regex::new(&format!("^(?:{search})$")).map_err(|e| SearchError::Compile {
            search: search.to_string(),
            source: e,
        })?;
        Ok(Search::Pattern {
            regex,
            prefix: literal_prefix(search),
        })
    }

    /// What every name this search matches starts with: the whole name for an exact search,
    /// the literal text before the first metacharacter for a pattern (nothing, for a pattern
    /// with an alternation anywhere in it).
    pub fn prefix(&self) -> &str {
        match self {
            Search::Exact(exact) | Search::Prefix(exact) => exact,
            Search::Pattern { prefix, .. } => prefix,
        }
    }

    /// Does `name` match, whole?
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Search::Exact(exact) => exact == name,
            Search::Prefix(prefix) => name
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| !rest.contains('\n')),
            Search::Pattern { regex, .. } => regex.is_match(name),
        }
    }

    /// The exact name, if this search is one.
    pub fn exact(&self) -> Option<&str> {
        match self {
            Search::Exact(exact) => Some(exact),
            Search::Prefix(_) | Search::Pattern { .. } => None,
        }
    }
}

/// The literal text a pattern's every match starts with: the characters before its first
/// metacharacter, less the last one when that metacharacter is a quantifier (`ab?c` → `a`;
/// `+` too, as `ab+*` may match `a`). A `|` anywhere may make an alternative start elsewhere:
/// no prefix.
fn literal_prefix(pattern: &str) -> String {
    if pattern.contains('|') {
        return String::new();
    }
    let mut prefix = String::new();
    for c in pattern.chars() {
        if META.contains(c) {
            if matches!(c, '?' | '*' | '{' | '+') {
                prefix.pop();
            }
            break;
        }
        prefix.push(c);
    }
    prefix
}

/// Pattern subscriptions by their literal prefix, so that a new name is tried only against
/// the patterns it can match: those whose prefix it starts with. Finding them costs a hash
/// lookup per distinct prefix length, however many patterns there are.
#[derive(Debug, Default)]
pub(crate) struct PrefixIndex {
    by_prefix: HashMap<String, HashSet<SubId>>,
    /// How many prefixes (in `by_prefix`) have each length, in bytes.
    lengths: BTreeMap<usize, usize>,
}

impl PrefixIndex {
    /// Files subscription `id` under `prefix`.
    pub fn insert(&mut self, prefix: &str, id: SubId) {
        let set = self.by_prefix.entry(prefix.to_string()).or_default();
        if set.is_empty() {
            *self.lengths.entry(prefix.len()).or_default() += 1;
        }
        set.insert(id);
    }

    /// Takes subscription `id` out from under `prefix`.
    pub fn remove(&mut self, prefix: &str, id: SubId) {
        let Some(set) = self.by_prefix.get_mut(prefix) else {
            return;
        };
        if set.remove(&id) && set.is_empty() {
            self.by_prefix.remove(prefix);
            if let Some(n) = self.lengths.get_mut(&prefix.len()) {
                *n -= 1;
                if *n == 0 {
                    self.lengths.remove(&prefix.len());
                }
            }
        }
    }

    /// Every subscription filed under a prefix of `name` (the only ones that can match it).
    pub fn candidates<'a>(&'a self, name: &'a str) -> impl Iterator<Item = SubId> + 'a {
        self.lengths
            .keys()
            .take_while(move |&&len| len <= name.len())
            .filter(move |&&len| name.is_char_boundary(len))
            .filter_map(move |&len| self.by_prefix.get(&name[..len]))
            .flatten()
            .copied()
    }

    /// How many subscriptions are filed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_prefix.values().map(HashSet::len).sum()
    }

    /// Is nothing filed?
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
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
    fn an_unbalanced_parenthesis_cannot_escape_the_anchors() {
        for bad in ["a)|(b", "svc)?(worker-1", "a)"] {
            assert!(Search::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn bad_patterns_explain_themselves() {
        let err = Search::new("worker-(").unwrap_err().to_string();
        assert!(err.contains("unclosed group"), "{err}");
        assert!(Search::new("").is_err());
    }

    #[test]
    fn prefixes_are_what_every_match_starts_with() {
        let prefix = |p: &str| Search::new(p).unwrap().prefix().to_string();
        assert_eq!(
            prefix("test-multihosting:worker-10:[-a-f0-9]+"),
            "test-multihosting:worker-10:"
        );
        assert_eq!(prefix("svc-.*"), "svc-");
        assert_eq!(prefix("ab?c"), "a");
        assert_eq!(prefix("ab*"), "a");
        assert_eq!(prefix("ab{0,2}"), "a");
        assert_eq!(prefix("ab+"), "a");
        assert_eq!(prefix("ab+*"), "a");
        assert_eq!(prefix("ab+??"), "a");
        assert_eq!(prefix("a|b"), "");
        assert_eq!(prefix("(?i)abc"), "");
        assert_eq!(prefix("é.x"), "é");
        assert_eq!(prefix("exact"), "exact");
    }

    #[test]
    fn the_index_finds_every_pattern_filed_under_a_prefix_of_the_name() {
        let mut index = PrefixIndex::default();
        let id = |n: u128| SubId(uuid::Uuid::from_u128(n));
        index.insert("", id(1));
        index.insert("svc-", id(2));
        index.insert("svc-1", id(3));
        index.insert("other", id(4));
        index.insert("é", id(5));
        let mut found: Vec<SubId> = index.candidates("svc-12").collect();
        found.sort();
        assert_eq!(found, [id(1), id(2), id(3)]);
        let mut found: Vec<SubId> = index.candidates("éa").collect();
        found.sort();
        assert_eq!(found, [id(1), id(5)]);
        index.remove("svc-", id(2));
        index.remove("", id(1));
        assert_eq!(index.candidates("svc-12").collect::<Vec<_>>(), [id(3)]);
        assert_eq!(index.len(), 3);
        index.remove("svc-1", id(3));
        index.remove("other", id(4));
        index.remove("é", id(5));
        assert!(index.is_empty() && index.lengths.is_empty());
    }

    #[test]
    fn a_literal_then_dot_star_is_a_prefix_search_that_matches_as_the_regex_would() {
        let s = Search::new("svc-.*").unwrap();
        assert!(matches!(s, Search::Prefix(ref p) if p == "svc-"));
        assert!(s.exact().is_none());
        let regex = Regex::new("^(?:svc-.*)$").unwrap();
        for name in [
            "svc-", "svc-1", "svc-a:b", "svc", "xsvc-1", "svc-\n", "svc-a\nb", "svc-é",
        ] {
            assert_eq!(s.matches(name), regex.is_match(name), "{name:?}");
        }
        assert!(matches!(Search::new(".*").unwrap(), Search::Pattern { .. }));
        assert!(matches!(Search::new("a.b.*").unwrap(), Search::Pattern { .. }));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// A prefix search and the regular expression it stands for agree on every name.
        #[test]
        fn prefix_searches_agree_with_their_regex(
            literal in "[a-z:0-9-]{1,6}",
            names in proptest::collection::vec("[a-z:0-9\n-]{0,10}", 1..40),
        ) {
            let search = Search::new(&format!("{literal}.*")).unwrap();
            proptest::prop_assert!(matches!(search, Search::Prefix(_)));
            let regex = Regex::new(&format!("^(?:{literal}.*)$")).unwrap();
            for name in names {
                proptest::prop_assert_eq!(search.matches(&name), regex.is_match(&name), "{:?}", name);
            }
        }

        /// Whatever the pattern, every name it matches starts with its prefix (so the index
        /// never hides a match). Patterns are built from literals, classes, groups,
        /// alternation and (stacked) quantifiers; names from the same letters.
        #[test]
        fn no_match_is_outside_the_prefix(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "b", "ab", ":", ".", "[ab]", "+", "*", "?", "??", "{0,2}", "{1}", "(", ")", "|", "\\.", "^", "$",
                ]),
                1..10,
            ),
            names in proptest::collection::vec("[ab:.]{0,8}", 1..40),
        ) {
            let pattern: String = tokens.concat();
            if let Ok(search) = Search::new(&pattern) {
                for name in names {
                    if search.matches(&name) {
                        proptest::prop_assert!(name.starts_with(search.prefix()), "{pattern:?} matched {name:?}");
                    }
                }
            }
        }
    }
}
