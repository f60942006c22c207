//! `top`'s arithmetic: two scrapes of a tracer's /metrics → per-container rates.
use dentry_common::metric;
use std::collections::BTreeMap;

/// A container, as the tracer labels it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// Counter values of one container at one scrape, and its live gauges (`None` from a tracer
/// that does not count live dentries).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub alloc: f64,
    pub positive: f64,
    pub negative: f64,
    pub live: Option<f64>,
    pub live_negative: Option<f64>,
    pub live_bytes: Option<f64>,
}

/// Adds `value` to a gauge that may not have been seen yet.
fn add(gauge: &mut Option<f64>, value: f64) {
    *gauge = Some(gauge.unwrap_or(0.0) + value);
}

/// One scrape of one tracer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub containers: BTreeMap<Key, Counts>,
    /// `dentry_count{type=...}`: total, unused, negative; and `cache_bytes`, `pods_ratio`
    /// (`dentry_cache_bytes`, `dentry_cache_pods_ratio`) where the tracer reports them.
    pub node: BTreeMap<String, f64>,
    /// The features this node's kernel lacks (`dentry_tracer_feature` 0), with the reason.
    pub features_off: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the tracer's /metrics is not Prometheus text: {0}")]
    Parse(String),
    #[error("the tracer's /metrics has no dentry series: is this a dentry tracer?")]
    NotATracer,
}

impl Sample {
    pub fn parse(text: &str) -> Result<Sample, Error> {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape =
            prometheus_parse::Scrape::parse(lines).map_err(|e| Error::Parse(e.to_string()))?;
        let mut sample = Sample::default();
        // A tracer always reports its build and the node's dentry counts; a container's series
        // appear only once it has allocated (a fresh tracer on a quiet node has none yet).
        let mut saw_dentry = false;
        for s in &scrape.samples {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            let label = |name: &str| s.labels.get(name).unwrap_or_default().to_owned();
            let key = || Key {
                namespace: label("namespace"),
                pod: label("pod"),
                container: label("container"),
            };
            saw_dentry |= s.metric.starts_with("dentry_");
            match s.metric.as_str() {
                metric::ALLOC_TOTAL => {
                    sample.containers.entry(key()).or_default().alloc += value;
                }
                metric::POSITIVE_TOTAL => {
                    sample.containers.entry(key()).or_default().positive += value
                }
                metric::NEGATIVE_TOTAL => {
                    sample.containers.entry(key()).or_default().negative += value
                }
                metric::LIVE => add(&mut sample.containers.entry(key()).or_default().live, value),
                metric::LIVE_NEGATIVE => add(
                    &mut sample.containers.entry(key()).or_default().live_negative,
                    value,
                ),
                metric::LIVE_BYTES => add(
                    &mut sample.containers.entry(key()).or_default().live_bytes,
                    value,
                ),
                metric::COUNT => {
                    sample.node.insert(label("type"), value);
                }
                metric::CACHE_BYTES => {
                    sample.node.insert(CACHE_BYTES.into(), value);
                }
                metric::CACHE_PODS_RATIO => {
                    sample.node.insert(PODS_RATIO.into(), value);
                }
                metric::FEATURE if value == 0.0 => {
                    sample
                        .features_off
                        .insert(label("feature"), label("reason"));
                }
                _ => {}
            }
        }
        if !saw_dentry {
            return Err(Error::NotATracer);
        }
        Ok(sample)
    }
}

/// `Sample::node` keys of the node's dentry cache size and the pods' share of it.
pub const CACHE_BYTES: &str = "cache_bytes";
pub const PODS_RATIO: &str = "pods_ratio";

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: Key,
    pub node: String,
    pub alloc_per_s: f64,
    pub negative_per_s: f64,
    pub positive_per_s: f64,
    /// Share of this interval's allocations that ended negative (failed lookups), 0–100.
    pub negative_pct: f64,
    pub alloc_total: f64,
    pub negative_total: f64,
    pub positive_total: f64,
    /// Live dentries now (the later scrape's gauges), where the tracer counts them.
    pub live: Option<f64>,
    pub live_negative: Option<f64>,
    pub live_bytes: Option<f64>,
}

/// The share of allocations that ended negative (failed lookups), 0–100; 0 without any.
pub fn negative_share(negative: f64, alloc: f64) -> f64 {
    if alloc > 0.0 {
        (100.0 * negative / alloc).min(100.0)
    } else {
        0.0
    }
}

/// The increase of a counter between two scrapes; a lower value means the series restarted
/// (a new tracer), and then everything counted since is the increase.
fn increase(before: f64, now: f64) -> f64 {
    if now >= before { now - before } else { now }
}

/// Rates over `seconds` between `before` and `now` for every container in `now`.
pub fn rows(before: &Sample, now: &Sample, seconds: f64, node: &str) -> Vec<Row> {
    let seconds = if seconds > 0.0 { seconds } else { f64::NAN };
    now.containers
        .iter()
        .map(|(key, c)| {
            let b = before.containers.get(key).copied().unwrap_or_default();
            let (alloc, negative, positive) = (
                increase(b.alloc, c.alloc),
                increase(b.negative, c.negative),
                increase(b.positive, c.positive),
            );
            Row {
                key: key.clone(),
                node: node.to_owned(),
                alloc_per_s: alloc / seconds,
                negative_per_s: negative / seconds,
                positive_per_s: positive / seconds,
                negative_pct: negative_share(negative, alloc),
                alloc_total: c.alloc,
                negative_total: c.negative,
                positive_total: c.positive,
                live: c.live,
                live_negative: c.live_negative,
                live_bytes: c.live_bytes,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(alloc: u64, negative: u64, positive: u64) -> String {
        format!(
            "# TYPE dentry_alloc_total counter\n\
             dentry_alloc_total{{container=\"mysql\",namespace=\"prod\",pod=\"mysql-0\"}} {alloc}\n\
             dentry_alloc_total{{container=\"\",namespace=\"\",pod=\"\"}} 7\n\
             # TYPE dentry_negative_total counter\n\
             dentry_negative_total{{container=\"mysql\",namespace=\"prod\",pod=\"mysql-0\"}} {negative}\n\
             # TYPE dentry_positive_total counter\n\
             dentry_positive_total{{container=\"mysql\",namespace=\"prod\",pod=\"mysql-0\"}} {positive}\n\
             # TYPE dentry_count gauge\n\
             dentry_count{{type=\"total\"}} 123456\n\
             dentry_count{{type=\"negative\"}} 4000\n"
        )
    }

    #[test]
    fn rates_between_two_scrapes() {
        let a = Sample::parse(&metrics(1000, 600, 100)).unwrap();
        let b = Sample::parse(&metrics(3000, 2100, 150)).unwrap();
        let rows = rows(&a, &b, 2.0, "node-a");
        let mysql = rows.iter().find(|r| r.key.pod == "mysql-0").expect("row");
        assert_eq!(mysql.alloc_per_s, 1000.0);
        assert_eq!(mysql.negative_per_s, 750.0);
        assert_eq!(mysql.positive_per_s, 25.0);
        assert_eq!(mysql.negative_pct, 75.0);
        assert_eq!(mysql.alloc_total, 3000.0);
        let other = rows
            .iter()
            .find(|r| r.key.pod.is_empty())
            .expect("unattributed row");
        assert_eq!(other.alloc_per_s, 0.0);
        assert_eq!(b.node["total"], 123456.0);
    }

    #[test]
    fn a_restarted_tracer_is_not_a_negative_rate() {
        let a = Sample::parse(&metrics(5000, 100, 10)).unwrap();
        let b = Sample::parse(&metrics(40, 20, 2)).unwrap();
        let r = rows(&a, &b, 1.0, "n");
        let mysql = r.iter().find(|r| r.key.pod == "mysql-0").expect("row");
        assert_eq!(mysql.alloc_per_s, 40.0);
        assert!(r.iter().all(|r| r.alloc_per_s >= 0.0));
    }

    #[test]
    fn live_gauges_are_read_where_the_tracer_has_them() {
        let mut text = metrics(10, 5, 1);
        text.push_str(
            "# TYPE dentry_live gauge\n\
             dentry_live{container=\"mysql\",namespace=\"prod\",pod=\"mysql-0\"} 3000\n\
             # TYPE dentry_live_negative gauge\n\
             dentry_live_negative{container=\"mysql\",namespace=\"prod\",pod=\"mysql-0\"} 2900\n\
             # TYPE dentry_live_bytes gauge\n\
             dentry_live_bytes{container=\"mysql\",namespace=\"prod\",pod=\"mysql-0\"} 600000\n\
             # TYPE dentry_cache_bytes gauge\n\
             dentry_cache_bytes 2097152\n",
        );
        let with = Sample::parse(&text).unwrap();
        let r = rows(&with, &with, 1.0, "n");
        let mysql = r.iter().find(|r| r.key.pod == "mysql-0").expect("row");
        assert_eq!(
            (mysql.live, mysql.live_negative, mysql.live_bytes),
            (Some(3000.0), Some(2900.0), Some(600000.0))
        );
        assert_eq!(with.node[CACHE_BYTES], 2097152.0);
        let without = Sample::parse(&metrics(10, 5, 1)).unwrap();
        assert!(
            rows(&without, &without, 1.0, "n")
                .iter()
                .all(|r| r.live.is_none())
        );
    }

    #[test]
    fn a_fresh_tracer_with_no_container_series_yet_is_a_tracer() {
        let fresh =
            "dentry_tracer_build_info{version=\"0.1.0\"} 1\ndentry_count{type=\"total\"} 810\n";
        let sample = Sample::parse(fresh).expect("a tracer");
        assert!(sample.containers.is_empty());
        assert_eq!(sample.node.get("total"), Some(&810.0));
    }

    #[test]
    fn not_a_tracer_is_said_plainly() {
        assert!(matches!(
            Sample::parse("# nothing here\nup 1\n"),
            Err(Error::NotATracer)
        ));
    }
}
