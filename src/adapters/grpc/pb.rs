//! The generated protobuf messages and tonic services of `polyport.v1` (from `proto/` by
//! build.rs), plus the encoded file descriptor set served by reflection.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("polyport.v1");

/// Every `polyport.v1` file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("polyport_descriptor");
