//! Scopes as the token protocol spells them, and the grants that decide how
//! much of a requested scope a user gets.
//!
//! A scope is `type:name:actions`, e.g. `repository:library/m:pull,push`; a
//! `scope` query parameter may hold several separated by spaces. The name may
//! itself contain `:` (a host with a port), so the type ends at the first `:`
//! and the actions start after the last one.

use crate::token::jwt::ResourceActions;

/// One requested scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// `repository`, `repository(plugin)`, `registry`, ...
    pub resource_type: String,
    /// The resource name, e.g. `library/m`.
    pub name: String,
    /// Requested actions, e.g. `["pull", "push"]`.
    pub actions: Vec<String>,
}

impl Scope {
    /// Parses one `type:name:actions` scope; `None` if it has fewer parts.
    pub fn parse(s: &str) -> Option<Scope> {
        let (resource_type, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if resource_type.is_empty() || name.is_empty() {
            return None;
        }
        Some(Scope {
            resource_type: resource_type.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// All scopes of the `scope` query values (each may hold several,
    /// space-separated); unparsable ones are skipped, as Distribution's own
    /// token servers do.
    pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Scope> {
        values
            .into_iter()
            .flat_map(str::split_whitespace)
            .filter_map(Scope::parse)
            .collect()
    }
}

/// What a user may do: `actions` on every resource of `resource_type` whose
/// name starts with `name_prefix`. The action `*` allows every action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub resource_type: String,
    pub name_prefix: String,
    pub actions: Vec<String>,
}

impl Grant {
    /// `actions` on every repository.
    pub fn repositories(actions: &[&str]) -> Grant {
        Grant::repository_prefix("", actions)
    }

    /// `actions` on repositories whose name starts with `prefix`.
    pub fn repository_prefix(prefix: &str, actions: &[&str]) -> Grant {
        Grant {
            resource_type: "repository".to_string(),
            name_prefix: prefix.to_string(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// Pull, push and delete on every repository, and the catalog.
    pub fn everything() -> Vec<Grant> {
        vec![
            Grant::repositories(&["*"]),
            Grant {
                resource_type: "registry".to_string(),
                name_prefix: String::new(),
                actions: vec!["*".to_string()],
            },
        ]
    }

    fn allows(&self, scope: &Scope, action: &str) -> bool {
        self.resource_type == scope.resource_type
            && scope.name.starts_with(&self.name_prefix)
            && self.actions.iter().any(|a| a == "*" || a == action)
    }
}

/// The `access` claim for `requested` under `grants`: one entry per requested
/// scope, holding only the actions some grant allows (possibly none, as
/// Docker Hub answers for a repository one may not touch).
pub fn authorize(grants: &[Grant], requested: &[Scope]) -> Vec<ResourceActions> {
    requested
        .iter()
        .map(|scope| ResourceActions {
            resource_type: scope.resource_type.clone(),
            name: scope.name.clone(),
            actions: scope
                .actions
                .iter()
                .filter(|a| grants.iter().any(|g| g.allows(scope, a)))
                .cloned()
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_ports_and_several_scopes() {
        let s = Scope::parse_all([
            "repository:127.0.0.1:5000/a/b:pull,push registry:catalog:*",
            "bogus",
        ]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "127.0.0.1:5000/a/b");
        assert_eq!(s[0].actions, ["pull", "push"]);
        assert_eq!(s[1].resource_type, "registry");
        assert_eq!(s[1].actions, ["*"]);
    }

    #[test]
    fn grants_intersect_requested_actions() {
        let scopes = Scope::parse_all(["repository:lib/m:pull,push", "repository:other/x:pull"]);
        let got = authorize(&[Grant::repository_prefix("lib/", &["pull"])], &scopes);
        assert_eq!(got[0].actions, ["pull"]);
        assert!(got[1].actions.is_empty());
        let all = authorize(&Grant::everything(), &scopes);
        assert_eq!(all[0].actions, ["pull", "push"]);
    }
}
