//! The summary per pod that ends a trace of several pods: what each pod's lines add up to,
//! counted from the lines the plugin wrote.
use std::collections::{BTreeMap, HashMap};

use crate::tracer::log::unescape;

#[derive(Default)]
struct Pod {
    lines: u64,
    alloc: u64,
    negative: u64,
    /// Negative lookups per directory.
    dirs: HashMap<String, u64>,
}

/// Keyed by (pod, node): the tracer names pods without their namespace, and one name on two
/// nodes is two pods.
#[derive(Default)]
pub struct Tally(BTreeMap<(String, String), Pod>);

impl Tally {
    /// Counts one trace line (seven tab-separated fields) from `node`'s tracer.
    pub fn add(&mut self, node: &str, line: &str) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [_, pod, _, _, operation, path, _] = fields[..] else {
            return;
        };
        let entry = self.0.entry((pod.to_owned(), node.to_owned())).or_default();
        entry.lines += 1;
        match operation {
            "alloc" => entry.alloc += 1,
            "negative" => {
                entry.negative += 1;
                let path = unescape(path);
                let dir = match path.rsplit_once('/') {
                    Some(("", _)) => "/".to_owned(),
                    Some((dir, _)) => dir.to_owned(),
                    None => path,
                };
                *entry.dirs.entry(dir).or_default() += 1;
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The table for stderr: one row per pod, with the directory of most negative lookups.
    pub fn render(&self) -> String {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::NOTHING)
            .set_header([
                "POD",
                "NODE",
                "LINES",
                "ALLOC",
                "NEGATIVE",
                "TOP DIRECTORY OF NEGATIVE LOOKUPS",
            ]);
        for ((pod, node), t) in &self.0 {
            let top = t
                .dirs
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map_or_else(|| "-".to_owned(), |(dir, n)| format!("{dir} ({n})"));
            table.add_row([
                pod.clone(),
                node.clone(),
                t.lines.to_string(),
                t.alloc.to_string(),
                t.negative.to_string(),
                top,
            ]);
        }
        format!("summary per pod:\n{table}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pod_on_each_node_gets_its_row() {
        let mut t = Tally::default();
        for (node, pod, op, path) in [
            ("node-a", "web-1", "alloc", "/srv/a"),
            ("node-a", "web-1", "negative", "/srv/a"),
            ("node-a", "web-1", "negative", "/srv/b"),
            ("node-a", "web-1", "negative", "/etc/x"),
            ("node-b", "web-2", "positive", "/srv/c"),
        ] {
            t.add(
                node,
                &format!("2026-12-01T08:37:15.0Z\t{pod}\tc\t81\t{op}\t{path}\text4"),
            );
        }
        t.add("node-a", "not a trace line");
        let text = t.render();
        let row = |pod: &str| {
            text.lines()
                .find(|l| l.contains(pod))
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(
            row("web-1"),
            ["web-1", "node-a", "4", "1", "3", "/srv", "(2)"]
        );
        assert_eq!(row("web-2"), ["web-2", "node-b", "1", "0", "0", "-"]);
    }
}
