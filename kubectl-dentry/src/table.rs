//! `top`'s output: a table (comfy-table), a wide table, or JSON, plus a line per node.
use std::collections::BTreeMap;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets::NOTHING};
use serde_json::json;

use crate::rates::{Row, Sample};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Wide,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    Alloc,
    Negative,
    Positive,
    NegativePct,
    Name,
}

/// `dentry_count` of one node, from its tracer.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLine {
    pub node: String,
    pub total: f64,
    pub unused: f64,
    pub negative: f64,
}

impl NodeLine {
    /// The node's line from one scrape of its tracer (0 where the tracer reports nothing).
    pub fn new(node: impl Into<String>, sample: &Sample) -> NodeLine {
        let count = |k: &str| sample.node.get(k).copied().unwrap_or(0.0);
        NodeLine {
            node: node.into(),
            total: count("total"),
            unused: count("unused"),
            negative: count("negative"),
        }
    }
}

pub fn sort(rows: &mut [Row], by: SortBy) {
    let name = |r: &Row| {
        (
            r.key.namespace.clone(),
            r.key.pod.clone(),
            r.key.container.clone(),
            r.node.clone(),
        )
    };
    rows.sort_by(|a, b| {
        let numbers = |f: fn(&Row) -> f64| f(b).total_cmp(&f(a));
        match by {
            SortBy::Alloc => numbers(|r| r.alloc_per_s),
            SortBy::Negative => numbers(|r| r.negative_per_s),
            SortBy::Positive => numbers(|r| r.positive_per_s),
            SortBy::NegativePct => numbers(|r| r.negative_pct),
            SortBy::Name => std::cmp::Ordering::Equal,
        }
        .then_with(|| name(a).cmp(&name(b)))
    });
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

fn rate(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

pub fn render(rows: &[Row], nodes: &[NodeLine], output: Output) -> String {
    if output == Output::Json {
        let containers: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "namespace": r.key.namespace, "pod": r.key.pod, "container": r.key.container,
                    "node": r.node, "alloc_per_second": r.alloc_per_s,
                    "negative_per_second": r.negative_per_s, "positive_per_second": r.positive_per_s,
                    "negative_percent": r.negative_pct, "alloc_total": r.alloc_total,
                    "negative_total": r.negative_total, "positive_total": r.positive_total,
                })
            })
            .collect();
        let nodes: Vec<_> = nodes
            .iter()
            .map(|n| json!({"node": n.node, "dentries": n.total, "unused": n.unused, "negative": n.negative}))
            .collect();
        return format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({"containers": containers, "nodes": nodes}))
                .unwrap_or_default()
        );
    }
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    let mut header = vec![
        "NAMESPACE",
        "POD",
        "CONTAINER",
        "NODE",
        "ALLOC/S",
        "NEGATIVE/S",
        "POSITIVE/S",
        "NEG%",
        "ALLOC",
        "NEGATIVE",
    ];
    if output == Output::Wide {
        header.push("POSITIVE");
    }
    table.set_header(header.clone());
    for r in rows {
        let mut cells = vec![
            or_none(&r.key.namespace).to_owned(),
            or_none(&r.key.pod).to_owned(),
            or_none(&r.key.container).to_owned(),
            r.node.clone(),
            rate(r.alloc_per_s),
            rate(r.negative_per_s),
            rate(r.positive_per_s),
            format!("{:.0}%", r.negative_pct),
            format!("{}", r.alloc_total),
            format!("{}", r.negative_total),
        ];
        if output == Output::Wide {
            cells.push(format!("{}", r.positive_total));
        }
        table.add_row(cells);
    }
    for (i, col) in table.column_iter_mut().enumerate() {
        // kubectl's look: no borders, columns three spaces apart.
        col.set_padding((0, 3));
        if i >= 4 {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    // comfy-table pads each line with the preset's (empty) borders: trim for clean output.
    for line in table.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let by_node: BTreeMap<&str, &NodeLine> = nodes.iter().map(|n| (n.node.as_str(), n)).collect();
    for n in by_node.values() {
        out.push_str(&format!(
            "node {}: {} dentries, {} unused, {} negative unused\n",
            n.node, n.total, n.unused, n.negative
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rates::{Key, rows};

    fn fixture_rows() -> (Vec<Row>, Vec<NodeLine>) {
        let a = Sample::parse(include_str!("../tests/fixtures/metrics-1.txt")).unwrap();
        let b = Sample::parse(include_str!("../tests/fixtures/metrics-2.txt")).unwrap();
        let mut r = rows(&a, &b, 4.0, "vm");
        sort(&mut r, SortBy::Alloc);
        (r, vec![NodeLine::new("vm", &b)])
    }

    #[test]
    fn the_recorded_workload_ranks_mysql_first() {
        let (r, _) = fixture_rows();
        // The VM workload: 300 failed lookups in mysql-0, 100 in nginx-1, between the scrapes.
        assert_eq!(
            r[0].key,
            Key {
                namespace: "prod".into(),
                pod: "mysql-0".into(),
                container: "mysql".into()
            }
        );
        assert_eq!(r[0].alloc_per_s, 75.0);
        assert_eq!(r[0].negative_pct, 100.0);
        assert_eq!(r[1].key.pod, "nginx-1");
        assert_eq!(r[1].alloc_per_s, 25.0);
    }

    #[test]
    fn table_wide_and_json() {
        let (r, nodes) = fixture_rows();
        let text = render(&r, &nodes, Output::Table);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("NAMESPACE") && lines[0].ends_with("NEGATIVE"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("prod")
                && lines[1].contains("mysql-0")
                && lines[1].contains("75.0"),
            "{text}"
        );
        assert!(text.contains("<none>"), "{text}");
        assert!(
            text.lines().last().unwrap().starts_with("node vm: "),
            "{text}"
        );
        assert!(
            render(&r, &nodes, Output::Wide)
                .lines()
                .next()
                .unwrap()
                .ends_with("POSITIVE")
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&r, &nodes, Output::Json)).unwrap();
        assert_eq!(json["containers"][0]["pod"], "mysql-0");
        assert_eq!(json["nodes"][0]["node"], "vm");
        let mut by_name = r.clone();
        sort(&mut by_name, SortBy::Name);
        assert!(by_name[0].key.namespace.is_empty());
    }
}
