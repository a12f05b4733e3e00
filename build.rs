//! Compiles `proto/polyport/v1/*.proto` into tonic/prost code with the vendored protoc, so a
//! fresh machine needs no system protoc and nothing is downloaded at build time.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Every .proto of the package, in a stable order.
    let mut protos: Vec<String> = std::fs::read_dir("proto/polyport/v1")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    protos.sort();
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("polyport_descriptor.bin"))
        .compile_protos(&protos, &["proto".to_string()])?;
    Ok(())
}
