//! Keyset pagination in domain terms: a limit and the key of the last row already seen.

/// Default and maximum page sizes shared by every protocol.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// A page request. `after` is the keyset key (an id) of the last item of the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<String>,
}

impl PageRequest {
    /// Clamps the limit into 1..=100 (default 20).
    pub fn new(limit: Option<i64>, after: Option<String>) -> Self {
        let limit = limit.map_or(DEFAULT_LIMIT, |l| l.clamp(1, MAX_LIMIT as i64) as u32);
        Self { limit, after }
    }
}

/// One page of results, newest first. `next_after` is the key to continue from, if any.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only proves there is more.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_after = if has_more { rows.last().map(key) } else { None };
        Page { items: rows, next_after }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_after: self.next_after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_clamped_into_one_to_one_hundred() {
        assert_eq!(PageRequest::new(None, None).limit, 20);
        assert_eq!(PageRequest::new(Some(0), None).limit, 1);
        assert_eq!(PageRequest::new(Some(-5), None).limit, 1);
        assert_eq!(PageRequest::new(Some(1_000_000), None).limit, 100);
    }
}
