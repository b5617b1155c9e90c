//! Znode paths with globs: `*` matches any run of characters within one path segment, `?` one
//! character (`/services/*/members`, `/locks/lock-?`).

/// Whether the path has glob characters.
pub fn is_glob(path: &str) -> bool {
    path.contains(['*', '?'])
}

/// Checks that `path` is an absolute znode path (globs allowed in segments).
pub fn validate(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must start with `/`".into());
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("must not end with `/`".into());
    }
    if path.contains('\0') {
        return Err("must not contain NUL".into());
    }
    for seg in path[1..].split('/') {
        if seg.is_empty() {
            return Err("empty path segment (`//`)".into());
        }
        if seg == "." || seg == ".." {
            return Err("relative segments (`.`, `..`) are not allowed".into());
        }
        if seg.contains("**") {
            return Err("`**` is not supported (use one `*` per segment)".into());
        }
    }
    Ok(())
}

/// Path segments (`/` → none).
pub fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The longest leading part of the pattern without glob characters (`/services` for
/// `/services/*/members`; the path itself when it has no glob).
pub fn static_prefix(pattern: &str) -> String {
    let mut out = String::new();
    for seg in segments(pattern) {
        if is_glob(seg) {
            break;
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        "/".into()
    } else {
        out
    }
}

/// Whether one segment matches one glob segment.
pub fn segment_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // iterative wildcard matching with backtracking on the last `*`
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether a concrete path matches the whole pattern.
pub fn matches(pattern: &str, path: &str) -> bool {
    let ps = segments(pattern);
    let xs = segments(path);
    ps.len() == xs.len() && ps.iter().zip(&xs).all(|(p, x)| segment_matches(p, x))
}

/// Whether a concrete path matches the first segments of the pattern (it could lead to
/// matches: `/services/foo` for `/services/*/members`).
pub fn matches_prefix(pattern: &str, path: &str) -> bool {
    let ps = segments(pattern);
    let xs = segments(path);
    xs.len() <= ps.len() && ps.iter().zip(&xs).all(|(p, x)| segment_matches(p, x))
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The parent of a path (`/` for top-level nodes and for `/`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(is_glob("/a/*/b"));
        assert!(!is_glob("/a/b"));
        assert_eq!(static_prefix("/services/*/members"), "/services");
        assert_eq!(static_prefix("/*"), "/");
        assert_eq!(static_prefix("/a/b"), "/a/b");
        assert!(segment_matches("*", "anything"));
        assert!(segment_matches("lock-?", "lock-1"));
        assert!(!segment_matches("lock-?", "lock-12"));
        assert!(segment_matches("a*b*c", "aXXbYYc"));
        assert!(!segment_matches("a*b*c", "aXXbYY"));
        assert!(segment_matches("*-member", "x-member"));
        assert!(matches("/services/*/members", "/services/foo/members"));
        assert!(!matches("/services/*/members", "/services/foo/members/x"));
        assert!(!matches("/services/*/members", "/services/foo"));
        assert!(matches_prefix("/services/*/members", "/services/foo"));
        assert!(matches_prefix("/services/*/members", "/services"));
        assert!(!matches_prefix("/services/*/members", "/other/foo"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
    }

    #[test]
    fn validation() {
        assert!(validate("/").is_ok());
        assert!(validate("/a/*/b").is_ok());
        assert!(validate("a").is_err());
        assert!(validate("/a/").is_err());
        assert!(validate("/a//b").is_err());
        assert!(validate("/a/../b").is_err());
        assert!(validate("/a/**").is_err());
    }
}
