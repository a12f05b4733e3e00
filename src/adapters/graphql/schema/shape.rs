//! The size of a document once every fragment spread is expanded, computed without expanding:
//! each fragment is measured once (memoised over the fragment graph, iteratively, so neither a
//! fan-out of spreads nor a long chain of fragments costs more than one pass over the text).

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};

/// What executing (or validating) the document would walk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Fields and inline fragments, counted once per place they end up after expansion.
    pub selections: u64,
    /// Fragment spreads, counted once per place they end up after expansion.
    pub spreads: u64,
}

impl Shape {
    fn add(self, other: Shape) -> Shape {
        Shape {
            selections: self.selections.saturating_add(other.selections),
            spreads: self.spreads.saturating_add(other.spreads),
        }
    }
}

/// The expanded shape of every operation in the document together. A spread of an unknown
/// fragment, or one that closes a cycle, counts as one spread and nothing more (validation
/// refuses both documents afterwards).
pub fn measure(doc: &ExecutableDocument) -> Shape {
    let mut memo: HashMap<&str, Shape> = HashMap::new();
    for name in doc.fragments.keys() {
        measure_fragment(doc, name.as_str(), &mut memo);
    }
    let operations: Vec<&SelectionSet> = match &doc.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(map) => map.values().map(|op| &op.node.selection_set.node).collect(),
    };
    operations.into_iter().fold(Shape::default(), |total, set| total.add(own_shape(set, &memo)))
}

/// The shape of a selection set whose fragments are all in `memo` (missing ones count as empty).
fn own_shape(set: &SelectionSet, memo: &HashMap<&str, Shape>) -> Shape {
    let mut shape = Shape::default();
    let mut pending = vec![set];
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    shape.selections = shape.selections.saturating_add(1);
                    pending.push(&f.node.selection_set.node);
                }
                Selection::InlineFragment(i) => {
                    shape.selections = shape.selections.saturating_add(1);
                    pending.push(&i.node.selection_set.node);
                }
                Selection::FragmentSpread(s) => {
                    let inner = memo.get(s.node.fragment_name.node.as_str()).copied().unwrap_or_default();
                    shape = shape.add(Shape { selections: 0, spreads: 1 }).add(inner);
                }
            }
        }
    }
    shape
}

/// The fragments a selection set spreads, directly or inside its fields.
fn spread_names(set: &SelectionSet) -> Vec<&str> {
    let mut names = Vec::new();
    let mut pending = vec![set];
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => pending.push(&f.node.selection_set.node),
                Selection::InlineFragment(i) => pending.push(&i.node.selection_set.node),
                Selection::FragmentSpread(s) => names.push(s.node.fragment_name.node.as_str()),
            }
        }
    }
    names
}

/// Measures `root` and every fragment it reaches, depth first with an explicit stack: a
/// fragment is measured after the fragments it spreads. A fragment met again while it is still
/// on the stack closes a cycle and is left out of the count.
fn measure_fragment<'a>(doc: &'a ExecutableDocument, root: &'a str, memo: &mut HashMap<&'a str, Shape>) {
    if memo.contains_key(root) {
        return;
    }
    let mut on_stack: HashSet<&'a str> = HashSet::new();
    let mut stack: Vec<(&'a str, bool)> = vec![(root, false)];
    while let Some((name, children_done)) = stack.pop() {
        let Some(fragment) = doc.fragments.get(name) else {
            continue;
        };
        let set = &fragment.node.selection_set.node;
        if children_done {
            on_stack.remove(name);
            let shape = own_shape(set, memo);
            memo.insert(name, shape);
            continue;
        }
        if memo.contains_key(name) || on_stack.contains(name) {
            continue;
        }
        on_stack.insert(name);
        stack.push((name, true));
        for child in spread_names(set) {
            if !memo.contains_key(child) && !on_stack.contains(child) {
                stack.push((child, false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str) -> Shape {
        measure(&async_graphql::parser::parse_query(query).expect("the query parses"))
    }

    /// `fragment F0 on Query { ...F1 ...F1 }` ... `fragment Fn on Query { me { id } }`.
    fn fan_out(levels: usize) -> String {
        let mut q = String::from("query { ...F0 }\n");
        for i in 0..levels {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{n} ...F{n} }}\n", n = i + 1));
        }
        q.push_str(&format!("fragment F{levels} on Query {{ me {{ id }} }}\n"));
        q
    }

    #[test]
    fn a_plain_query_counts_its_fields_and_inline_fragments() {
        let s = shape("{ me { id name } post(id: \"1\") { ... on Post { id } } }");
        assert_eq!(s, Shape { selections: 6, spreads: 0 });
    }

    #[test]
    fn a_fan_out_of_fragments_is_measured_as_if_expanded() {
        let s = shape(&fan_out(3));
        assert_eq!(s.spreads, 1 + 2 + 4 + 8);
        assert_eq!(s.selections, 8 * 2);
    }

    #[test]
    fn sixty_levels_of_fan_out_are_measured_at_once_and_saturate() {
        let started = std::time::Instant::now();
        let s = shape(&fan_out(60));
        assert!(s.spreads > 1 << 60 && s.selections >= 1 << 60);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_long_chain_of_fragments_needs_no_deep_recursion() {
        let n = 20_000;
        let mut q = String::from("{ ...F0 }\n");
        for i in 0..n {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
        }
        q.push_str(&format!("fragment F{n} on Query {{ me {{ id }} }}\n"));
        let s = shape(&q);
        assert_eq!(s.spreads, n as u64 + 1);
        assert_eq!(s.selections, 2);
    }

    #[test]
    fn cycles_and_unknown_fragments_end_the_count() {
        let s = shape("{ ...A } fragment A on Query { me { id } ...B } fragment B on Query { ...A ...Nowhere }");
        assert!(s.spreads <= 4, "{s:?}");
    }
}
