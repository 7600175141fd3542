//! Compiles every `.proto` under `proto/` into Rust: prost messages, tonic clients and servers,
//! pbjson protobuf-JSON serde impls, and a file-descriptor set for gRPC reflection. Well-known
//! types come from `pbjson-types`, except `google.protobuf.Timestamp` (`src/pb/timestamp.rs`).
//!
//! `protoc` comes from the `protoc-bin-vendored` build dependency unless `$PROTOC` names one,
//! so no system install is needed.

use std::{
    env,
    path::{Path, PathBuf},
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("switchyard_descriptor.bin");

    let mut protos = Vec::new();
    collect_protos(Path::new("proto"), &mut protos)?;
    protos.sort();

    let mut config = tonic_prost_build::Config::new();
    if env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    let wkt_include = protoc_bin_vendored::include_path()?;

    tonic_prost_build::configure()
        // tonic-prost's codec, decoding each message from one slice (src/pb/codec.rs).
        .codec_path("crate::pb::codec::PbCodec")
        .file_descriptor_set_path(&descriptor_path)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        // Our own Timestamp: pbjson-types writes `+00:00`; ProtoJSON and A2A need `Z`.
        .extern_path(".google.protobuf.Timestamp", "crate::pb::Timestamp")
        .compile_with_config(config, &protos, &[PathBuf::from("proto"), wkt_include])?;

    let descriptor_set = std::fs::read(&descriptor_path)?;
    // Unknown JSON fields are ignored (A2A v1.0: "ignore unknown fields").
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        .ignore_unknown_fields()
        .build(&[".lf.a2a.v1", ".switchyard.v1"])?;

    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}

/// Every `.proto` file below `dir`, recursively.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            out.push(path);
        }
    }
    Ok(())
}
