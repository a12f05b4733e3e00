//! Compiles `proto/polyport/v1/*.proto` into tonic/prost code with the vendored protoc, so a
//! fresh machine needs no system protoc and nothing is downloaded at build time.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = ["auth", "users", "posts", "events", "webhooks"].map(|n| format!("proto/polyport/v1/{n}.proto"));
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("polyport_descriptor.bin"))
        .compile_protos(&protos, &["proto".to_string()])?;
    Ok(())
}
