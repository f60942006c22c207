//! What this kernel lets the tracer do. Every kernel dependency a feature has (BTF members,
//! functions, attach types, map kinds) is probed at start; a feature whose dependency is missing
//! is switched off alone, with one line naming it and why, and everything else runs
//! (docs/architecture.md, "Kernel ranges and features").
use std::collections::BTreeMap;

/// A part of the tracer a kernel can lack. The per-cgroup counters are not among them: they
/// need nothing but a probe on each function, and without them there is no tracer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// Path-level trace events (the walk reads `struct dentry`, `qstr`, `super_block`).
    Trace,
    /// The per-CPU cache of directory paths (its invalidation reads `dentry.d_rcu`).
    PathCache,
    /// The live gauges (a slab object's memory cgroup: `struct slab`/`page`, `obj_cgroup`, ...).
    Live,
    /// Pods armed for before their cgroups exist (`cgroup_mkdir`, `cgroup.kn`, `kernfs_node.id`).
    Pending,
}

impl Feature {
    pub const ALL: [Feature; 4] = [
        Feature::Trace,
        Feature::PathCache,
        Feature::Live,
        Feature::Pending,
    ];

    /// The name in `--check`, in the metric's `feature` label and in the plugin.
    pub fn name(self) -> &'static str {
        dentry_common::FEATURES[self as usize].0
    }

    /// Its line in `--check`.
    pub fn check_name(self) -> &'static str {
        match self {
            Feature::Trace => "feature:trace",
            Feature::PathCache => "feature:path-cache",
            Feature::Live => "feature:live",
            Feature::Pending => "feature:pending",
        }
    }

    /// What a user loses when it is off, as the start of the one line saying so.
    pub fn what(self) -> &'static str {
        dentry_common::FEATURES[self as usize].1
    }
}

/// The features this kernel lacks, each with its reason; the rest are on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    off: BTreeMap<Feature, String>,
}

impl Features {
    /// Marks `feature` off; the first reason found is the one kept.
    pub fn off(&mut self, feature: Feature, reason: impl Into<String>) {
        self.off.entry(feature).or_insert_with(|| reason.into());
    }

    pub fn is_on(&self, feature: Feature) -> bool {
        !self.off.contains_key(&feature)
    }

    /// Why `feature` is off.
    pub fn reason(&self, feature: Feature) -> Option<&str> {
        self.off.get(&feature).map(String::as_str)
    }

    /// One line per feature that is off: `live gauges off: <why>`.
    pub fn lines(&self) -> Vec<String> {
        self.off
            .iter()
            .map(|(f, why)| format!("{} off: {why}", f.what()))
            .collect()
    }

    /// Every feature with its state, for `--check` and `/metrics`.
    pub fn all(&self) -> impl Iterator<Item = (Feature, Option<&str>)> {
        Feature::ALL.into_iter().map(|f| (f, self.reason(f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_dependency_costs_its_feature_only() {
        let mut f = Features::default();
        f.off(Feature::Live, "struct slab has no member obj_exts");
        f.off(Feature::Live, "a later reason is not kept");
        assert!(!f.is_on(Feature::Live));
        assert!(f.is_on(Feature::Trace) && f.is_on(Feature::PathCache));
        assert_eq!(
            f.lines(),
            ["live gauges off: struct slab has no member obj_exts"]
        );
        let states: Vec<(&str, bool)> = f.all().map(|(f, why)| (f.name(), why.is_none())).collect();
        assert_eq!(
            states,
            [
                ("trace", true),
                ("path-cache", true),
                ("live", false),
                ("pending", true)
            ]
        );
    }
}
