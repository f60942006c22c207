//! Empty on purpose: this target exists so `tracer` can list the crate as a build-dependency and
//! cargo rebuilds the tracer when the kernel programs change.
#![no_std]
