//! A CRI runtime's answers (protobuf ListPodSandboxResponse and ListContainersResponse): any
//! bytes decode or are refused, and decoded answers become names without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use tracer::owners::cri::{ListContainersResponse, ListPodSandboxResponse, to_names};

fuzz_target!(|data: &[u8]| {
    // The first byte says where the sandboxes' answer ends and the containers' begins.
    let Some((split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(*split) * rest.len() / 255;
    let sandboxes = ListPodSandboxResponse::decode(&rest[..at]).unwrap_or_default();
    let containers = ListContainersResponse::decode(&rest[at..]).unwrap_or_default();
    let _ = to_names(&sandboxes, &containers);
});
