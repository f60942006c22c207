//! Who a cgroup belongs to: cgroup ids and paths, pod UIDs and container IDs from the path,
//! names from the kubelet's log directories and the runtime's CRI socket, and the resolved map.
pub mod cgroup;
pub mod cri;
pub mod kubelet;
pub mod kubepath;
pub mod layers;
mod map;

pub use map::{Owner, Owners, Sources};
