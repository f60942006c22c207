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
    /// The memory of live dentries (rows without live gauges last, by allocation rate).
    Memory,
    /// Live dentries.
    Live,
    /// Live negative dentries.
    LiveNegative,
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
    /// The dentry cache's memory and the share of it the node's pods hold, where reported.
    pub cache_bytes: Option<f64>,
    pub pods_ratio: Option<f64>,
    /// Why the node's tracer could not be read this round (its line says so, no rows).
    pub unreachable: Option<String>,
    /// What the node's kernel lacks: feature → why (a line each, as the tracer says it).
    pub features_off: BTreeMap<String, String>,
    /// `top --prometheus`: the seconds Prometheus has scraped the node's tracer, where fewer
    /// than the rate window (its rates are over these seconds, not the window).
    pub rates_over: Option<f64>,
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
            cache_bytes: sample.node.get(crate::rates::CACHE_BYTES).copied(),
            pods_ratio: sample.node.get(crate::rates::PODS_RATIO).copied(),
            unreachable: None,
            features_off: sample.features_off.clone(),
            rates_over: None,
        }
    }

    /// A node whose tracer could not be read this round.
    pub fn unreachable(node: impl Into<String>, why: &impl std::fmt::Display) -> NodeLine {
        NodeLine {
            node: node.into(),
            total: 0.0,
            unused: 0.0,
            negative: 0.0,
            cache_bytes: None,
            pods_ratio: None,
            unreachable: Some(why.to_string()),
            features_off: BTreeMap::new(),
            rates_over: None,
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
        let gauge = |f: fn(&Row) -> Option<f64>| {
            let value = |r: &Row| f(r).unwrap_or(f64::NEG_INFINITY);
            value(b)
                .total_cmp(&value(a))
                .then_with(|| b.alloc_per_s.total_cmp(&a.alloc_per_s))
        };
        match by {
            SortBy::Memory => gauge(|r| r.live_bytes),
            SortBy::Live => gauge(|r| r.live),
            SortBy::LiveNegative => gauge(|r| r.live_negative),
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

/// A count, or `-` where the tracer does not report it.
fn count(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0}"))
}

/// Bytes in binary units, as `kubectl top` shows memory: `512B`, `58.6KiB`, `195MiB`.
pub fn human_bytes(v: Option<f64>) -> String {
    let Some(mut v) = v else {
        return "-".into();
    };
    if v < 1024.0 {
        return format!("{v:.0}B");
    }
    for unit in ["KiB", "MiB", "GiB", "TiB"] {
        v /= 1024.0;
        if v < 1024.0 || unit == "TiB" {
            return if v >= 100.0 {
                format!("{v:.0}{unit}")
            } else {
                format!("{v:.1}{unit}")
            };
        }
    }
    unreachable!("the loop returns at TiB")
}

/// The share of a node's dentry cache that the listed pods' rows hold.
fn listed_share(rows: &[Row], node: &NodeLine) -> Option<f64> {
    let cache = node.cache_bytes.filter(|c| *c > 0.0)?;
    // No live figures (a tracer that does not count live dentries): no share to give.
    let held: Vec<f64> = rows
        .iter()
        .filter(|r| r.node == node.node && !r.key.pod.is_empty())
        .filter_map(|r| r.live_bytes)
        .collect();
    if held.is_empty() {
        return None;
    }
    Some(held.iter().fold(0.0, |a, b| a + b) / cache)
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
                    "live": r.live, "live_negative": r.live_negative, "live_bytes": r.live_bytes,
                })
            })
            .collect();
        let nodes: Vec<_> = nodes
            .iter()
            .map(|n| {
                if let Some(why) = &n.unreachable {
                    return json!({"node": n.node, "unreachable": why});
                }
                json!({
                    "node": n.node, "dentries": n.total, "unused": n.unused,
                    "negative": n.negative, "cache_bytes": n.cache_bytes,
                    "pods_ratio": n.pods_ratio, "listed_pods_ratio": listed_share(rows, n),
                    "features_off": n.features_off, "rates_over_seconds": n.rates_over,
                })
            })
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
    // What fits 80 columns: who holds the cache (live, live negative, their memory) and who
    // fills it now (allocation rate, share ending negative). -o wide adds the node, the other
    // rates and the counters' totals.
    let wide = output == Output::Wide;
    let header: Vec<&str> = if wide {
        vec![
            "NAMESPACE",
            "POD",
            "CONTAINER",
            "NODE",
            "LIVE",
            "LIVE-NEG",
            "MEMORY",
            "ALLOC/S",
            "NEGATIVE/S",
            "POSITIVE/S",
            "NEG%",
            "ALLOC",
            "NEGATIVE",
            "POSITIVE",
        ]
    } else {
        vec![
            "NAMESPACE",
            "POD",
            "CONTAINER",
            "LIVE",
            "LIVE-NEG",
            "MEMORY",
            "ALLOC/S",
            "NEG%",
        ]
    };
    let names = if wide { 4 } else { 3 };
    table.set_header(header);
    for r in rows {
        let mut cells = vec![
            or_none(&r.key.namespace).to_owned(),
            or_none(&r.key.pod).to_owned(),
            or_none(&r.key.container).to_owned(),
        ];
        if wide {
            cells.push(r.node.clone());
        }
        cells.extend([
            count(r.live),
            count(r.live_negative),
            human_bytes(r.live_bytes),
            rate(r.alloc_per_s),
        ]);
        if wide {
            cells.extend([rate(r.negative_per_s), rate(r.positive_per_s)]);
        }
        cells.push(format!("{:.0}%", r.negative_pct));
        if wide {
            cells.extend([
                format!("{}", r.alloc_total),
                format!("{}", r.negative_total),
                format!("{}", r.positive_total),
            ]);
        }
        table.add_row(cells);
    }
    for (i, col) in table.column_iter_mut().enumerate() {
        // kubectl's look: no borders, columns three spaces apart.
        col.set_padding((0, 3));
        if i >= names {
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
        if let Some(why) = &n.unreachable {
            out.push_str(&format!("node {}: unreachable: {why}\n", n.node));
            continue;
        }
        out.push_str(&format!(
            "node {}: {} dentries, {} unused, {} negative unused",
            n.node, n.total, n.unused, n.negative
        ));
        if let Some(cache) = n.cache_bytes {
            out.push_str(&format!("; dentry cache {}", human_bytes(Some(cache))));
            if let Some(share) = listed_share(rows, n) {
                out.push_str(&format!(", listed pods hold {:.0}%", 100.0 * share));
            }
        }
        if let Some(secs) = n.rates_over {
            out.push_str(&format!(
                "; rates over the {secs:.0} s Prometheus has scraped it (less than --rate-window)"
            ));
        }
        out.push('\n');
        for (feature, why) in &n.features_off {
            let what = dentry_common::feature_what(feature);
            out.push_str(&format!("node {}: {what} off: {why}\n", n.node));
        }
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
    fn no_live_figures_no_share_of_the_cache() {
        let (mut r, nodes) = fixture_rows();
        assert!(render(&r, &nodes, Output::Table).contains("listed pods hold"));
        for row in &mut r {
            row.live_bytes = None;
        }
        let text = render(&r, &nodes, Output::Table);
        assert!(!text.contains("listed pods hold"), "{text}");
        assert!(text.contains("dentry cache"), "{text}");
    }

    #[test]
    fn a_feature_the_nodes_kernel_lacks_is_one_line_under_its_node() {
        let text = format!(
            "{}dentry_tracer_feature{{feature=\"live\",reason=\"struct slab has no member \
             obj_exts\"}} 0\ndentry_tracer_feature{{feature=\"trace\",reason=\"\"}} 1\n",
            include_str!("../tests/fixtures/metrics-2.txt")
        );
        let sample = Sample::parse(&text).unwrap();
        let (r, _) = fixture_rows();
        let node = NodeLine::new("vm", &sample);
        let out = render(&r, std::slice::from_ref(&node), Output::Table);
        let lines: Vec<&str> = out.lines().filter(|l| l.contains(" off: ")).collect();
        assert_eq!(
            lines,
            ["node vm: live gauges off: struct slab has no member obj_exts"]
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&r, &[node], Output::Json)).unwrap();
        assert_eq!(
            json["nodes"][0]["features_off"]["live"],
            "struct slab has no member obj_exts"
        );
    }

    #[test]
    fn bytes_in_binary_units() {
        let cases = [
            (None, "-"),
            (Some(512.0), "512B"),
            (Some(60_000.0), "58.6KiB"),
            (Some(20_000_000.0), "19.1MiB"),
            (Some(204_472_320.0), "195MiB"),
            (Some(3.0 * (1u64 << 30) as f64), "3.0GiB"),
        ];
        for (bytes, text) in cases {
            assert_eq!(human_bytes(bytes), text);
        }
    }

    #[test]
    fn memory_sorts_first_and_rows_without_gauges_last() {
        let (mut r, _) = fixture_rows();
        sort(&mut r, SortBy::Memory);
        let pods: Vec<&str> = r.iter().map(|row| row.key.pod.as_str()).collect();
        assert_eq!(pods, ["mysql-0", "nginx-1", ""]);
        // A tracer without live gauges: its rows go last.
        r[0].live_bytes = None;
        sort(&mut r, SortBy::Memory);
        assert_eq!(r[2].key.pod, "mysql-0");
    }

    #[test]
    fn table_wide_and_json() {
        let (r, nodes) = fixture_rows();
        let text = render(&r, &nodes, Output::Table);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("NAMESPACE") && lines[0].ends_with("NEG%"),
            "{text}"
        );
        assert!(
            lines
                .iter()
                .filter(|l| !l.starts_with("node "))
                .all(|l| l.len() <= 80),
            "the default table fits 80 columns:\n{text}"
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
        // 300 and 100 live dentries of 200 bytes in mysql-0 and nginx-1, of the cache's pages.
        let cache = json["nodes"][0]["cache_bytes"].as_f64().unwrap();
        let share = json["nodes"][0]["listed_pods_ratio"].as_f64().unwrap();
        assert!((share * cache - 80_000.0).abs() < 1.0, "{share} of {cache}");
        assert_eq!(json["containers"][0]["live_bytes"], 60_000.0);
        let mut by_name = r.clone();
        sort(&mut by_name, SortBy::Name);
        assert!(by_name[0].key.namespace.is_empty());
    }
}
