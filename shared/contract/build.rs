//! Compiles `proto/cet/v1/*.proto` with protox (no system `protoc`), generates
//! prost messages, tonic clients and servers, proto3 JSON (pbjson) impls, and
//! writes the encoded file descriptor set used by server reflection; then
//! the service traits and servers once more for servers, over the same
//! messages but the answers they send already encoded (`crate::served`).

use std::path::PathBuf;

use prost::Message;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let dir = root.join("cet/v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let bytes = fds.encode_to_vec();
    std::fs::write(out.join("cet_v1_descriptor.bin"), &bytes)?;

    tonic_prost_build::configure()
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        // prost's codec, but an undecodable message is INVALID_ARGUMENT.
        .codec_path("crate::codec::Codec")
        .compile_fds(fds.clone())?;

    // The service traits and servers again, for servers: every message is
    // the one generated above, except the answers a server sends already
    // encoded (see `crate::wire`).
    let served = out.join("served");
    std::fs::create_dir_all(&served)?;
    tonic_prost_build::configure()
        .build_client(false)
        .out_dir(&served)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .extern_path(".cet.v1", "crate::proto")
        .extern_path(
            ".cet.v1.ListInitiativesResponse",
            "crate::wire::ListInitiativesResponse",
        )
        .extern_path(".cet.v1.Initiative", "crate::wire::Initiative")
        .extern_path(".cet.v1.Overview", "crate::wire::Overview")
        .codec_path("crate::codec::Codec")
        .compile_fds(fds)?;

    pbjson_build::Builder::new()
        .register_descriptors(&bytes)?
        .build(&[".cet.v1"])?;
    Ok(())
}
